"""Compare our static schema with the one cog==0.16.12 generates at runtime (it imports the predictor).

Needs PyPI once: the legacy SDK is installed into ~/.cache/ocibuild-test/cog016-venv and reused.
Every normalisation below is an intended difference, documented in docs/cog-schema.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ocibuild.cog.schema import generate_schema

pytestmark = pytest.mark.integration

PREDICTORS = Path(__file__).parent / "predictors"
LEGACY_CASES = sorted(
    p.name
    for p in PREDICTORS.iterdir()
    if (p / "expected.json").is_file() and json.loads((p / "expected.json").read_text())["legacy"]
)
VENV = Path.home() / ".cache" / "ocibuild-test" / "cog016-venv"


@pytest.fixture(scope="session")
def legacy_python() -> Path:
    python = VENV / "bin" / "python"
    marker = VENV / ".cog-0.16.12"
    if not marker.exists():
        uv = Path(sys.executable).parent / "uv"
        shutil.rmtree(VENV, ignore_errors=True)
        subprocess.run([str(uv), "venv", "-q", "-p", "3.11", str(VENV)], check=True)
        env = {**os.environ, "VIRTUAL_ENV": str(VENV)}
        subprocess.run([str(uv), "pip", "install", "-q", "cog==0.16.12"], check=True, env=env)
        marker.write_text("")
    return python


def legacy_schemas(python: Path, case: str, ref: str, tmp_path: Path) -> dict[str, Any]:
    shutil.copytree(PREDICTORS / case, tmp_path, dirs_exist_ok=True)
    (tmp_path / "cog.yaml").write_text(f'build:\n  python_version: "3.11"\npredict: "{ref}"\n')
    done = subprocess.run(
        [str(python), "-m", "cog.command.openapi_schema"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)["components"]["schemas"]


def normalise_legacy(schemas: dict[str, Any]) -> dict[str, Any]:
    """Legacy names BaseModel outputs as their own component and points Output at it; Cog now inlines."""
    output = schemas["Output"]
    if "$ref" in output:
        output = schemas["Output"] = {**schemas[output["$ref"].rsplit("/", 1)[1]], "title": "Output"}
    for field in output.get("properties", {}).values():
        field.pop("default", None)  # Cog's static generator does not describe output field defaults
    return schemas


def normalise_ours(ours: dict[str, Any], legacy: dict[str, Any]) -> dict[str, Any]:
    for name, prop in ours["Input"]["properties"].items():
        if prop.get("x-cog-secret") and prop.get("default", 0) is None:
            # Secret = Input(default=None): Cog now marks it nullable with a null default; 0.16 left both out.
            del prop["default"], prop["nullable"]
        if "allOf" in prop and "default" not in legacy["Input"]["properties"][name]:
            # 0.16 drops a plain (non-Input) default on Literal parameters; we keep it.
            prop.pop("default", None)
    return ours


@pytest.mark.parametrize("case", LEGACY_CASES)
def test_input_and_output_match_cog_0_16(legacy_python: Path, tmp_path: Path, case: str) -> None:
    ref = json.loads((PREDICTORS / case / "expected.json").read_text())["run"]
    legacy = normalise_legacy(legacy_schemas(legacy_python, case, ref, tmp_path))
    ours = normalise_ours(generate_schema(PREDICTORS / case, ref, None).openapi["components"]["schemas"], legacy)
    enums = [k for k in ours if k[:1].islower()]
    for key in ("Input", "Output", *enums):
        assert ours[key] == legacy[key], key
