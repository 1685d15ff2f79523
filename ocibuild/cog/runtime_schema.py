"""The schema when the source alone cannot give it: read inside the built image, or given with --openapi-schema.

The static generator (``cog.schema``) stays first. When an ``Input()`` value is computed (``choices=list(MODELS)``,
a default from a helper, a shared ``Inputs.prompt = Input(...)``), it raises ``UnresolvedValue``; the build then
imports the predictor in the image built so far (the build.run sandbox, no network, a time limit) with the
runner's ``cog.server.introspect``, which prints every input's ``Input()`` options, and makes the document from
the source's types and those values, so it has exactly the static generator's shape.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ocibuild.cog.config import LoadedConfig
from ocibuild.cog.schema import RuntimeInputs, SchemaResult, generate_schema
from ocibuild.errors import BuildError, UserInputError
from ocibuild.oci.layer import LayerBlob
from ocibuild.oci.store import Store
from ocibuild.run.probe import run_captured
from ocibuild.run.spec import BindMount


def schema_timeout() -> float:
    """How long importing the predictor may take in the image: ``$OCIBUILD_SCHEMA_TIMEOUT`` seconds (300)."""
    try:
        return float(os.environ.get("OCIBUILD_SCHEMA_TIMEOUT") or 300)
    except ValueError:
        raise UserInputError("OCIBUILD_SCHEMA_TIMEOUT: expected a number of seconds") from None


def read_inputs_in_image(
    loaded: LoadedConfig,
    layers: Sequence[LayerBlob],
    store: Store,
    *,
    python: str,
    env: Sequence[str],
    timeout: float | None = None,
) -> RuntimeInputs:
    """Import the predictor (and trainer) on ``layers`` with the project at /src, as the runner does."""
    command = [python, "-m", "cog.server.introspect"]
    if loaded.predictor_ref:
        command += ["--predict", loaded.predictor_ref]
    if loaded.train_ref:
        command += ["--train", loaded.train_ref]
    captured = run_captured(
        layers,
        store,
        command,
        env=[*env, "PYTHONDONTWRITEBYTECODE=1"],
        volumes=[BindMount(str(loaded.project_dir.resolve()), "/src", readonly=True)],
        cwd="/src",
        timeout=schema_timeout() if timeout is None else timeout,
    )
    if captured.code != 0:
        lines = captured.stderr.decode(errors="replace").strip().splitlines()
        reason = lines[-1] if lines else f"exit code {captured.code}"
        raise BuildError(f"importing the predictor in the image to read its schema failed: {reason}")
    try:
        values = json.loads(captured.stdout)
    except ValueError:
        raise BuildError("importing the predictor in the image printed no schema") from None
    if not isinstance(values, dict):
        raise BuildError("importing the predictor in the image printed no schema")
    return values


def schema_from_inputs(loaded: LoadedConfig, values: RuntimeInputs) -> SchemaResult:
    """The document from the source's types and the values read in the image."""
    return generate_schema(loaded.project_dir, loaded.predictor_ref, loaded.train_ref, runtime=values)


def placeholder_schema(loaded: LoadedConfig) -> SchemaResult:
    """The document without the computed values: its decorators (streaming, concurrency) are the real ones."""
    return generate_schema(loaded.project_dir, loaded.predictor_ref, loaded.train_ref, lenient=True)


def schema_from_file(path: Path, loaded: LoadedConfig) -> SchemaResult:
    """``--openapi-schema FILE``: the document as given (Cog's flag); streaming and concurrency from the source."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserInputError(f"--openapi-schema {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UserInputError(f"--openapi-schema {path}: not JSON ({exc})") from None
    schemas = document.get("components", {}).get("schemas", {}) if isinstance(document, dict) else {}
    if not isinstance(schemas, dict) or not ({"Input", "TrainingInput"} & set(schemas)):
        raise UserInputError(f"--openapi-schema {path}: not an OpenAPI document with components.schemas.Input")
    try:
        static = placeholder_schema(loaded)
        return SchemaResult(document, static.streaming, static.concurrency_max, static.is_async)
    except UserInputError:
        return SchemaResult(document, _streaming(document), None, True)


def _streaming(document: dict[str, Any]) -> bool:
    create = document.get("paths", {}).get("/predictions", {}).get("post", {})
    return bool(isinstance(create, dict) and create.get("x-cog-streaming"))
