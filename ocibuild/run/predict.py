"""``ocibuild predict``: what ``cog predict`` does, without Docker.

Check the inputs against the image's schema, start the image's runner in a network of its own (its port 5000
published on a free port of 127.0.0.1; outbound through slirp4netns where it works), poll
``/health-check`` every 100 ms until READY while echoing the setup logs, POST one prediction, then print the
output (strings plain, other values as JSON) or write file outputs (``data:`` URLs) to disk, and stop.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import mimetypes
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocibuild.errors import BuildError, UserInputError
from ocibuild.oci.image import Image
from ocibuild.oci.store import Store
from ocibuild.run.extract import rootfs_in_use
from ocibuild.run.gpu import gpu_setup
from ocibuild.run.inputs import parse_input_args
from ocibuild.run.network import Publish, Publisher, Readiness
from ocibuild.run.outbound import Outbound
from ocibuild.run.paths import read_text_in
from ocibuild.run.runtime import Container, reap_dead_runs, stop_signals
from ocibuild.run.spec import RunOptions, build_spec, parse_volume
from ocibuild.run.workspace import Workspace

POLL_S = 0.1
SCHEMA_LABEL = "run.cog.openapi_schema"
SCHEMA_FILE = ".cog/openapi_schema.json"
RUNNER_PORT = 5000


@dataclass
class PredictionResult:
    """The final prediction: its status, raw output, logs, metrics and the files written from the output."""

    status: str
    output: Any = None
    logs: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    text: str | None = None


def schema_from_label(config: dict[str, Any]) -> dict[str, Any] | None:
    text = (config.get("Labels") or {}).get(SCHEMA_LABEL)
    return _parse_schema(text, f"label {SCHEMA_LABEL}") if text else None


def schema_from_rootfs(rootfs: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """The bundled schema: ``<WorkingDir>/.cog/openapi_schema.json`` (``/src`` when no WorkingDir)."""
    path = f"{config.get('WorkingDir') or '/src'}/{SCHEMA_FILE}"
    text = read_text_in(rootfs, path)
    return _parse_schema(text, path) if text else None


def _parse_schema(text: str, where: str) -> dict[str, Any]:
    try:
        schema = json.loads(text)
    except ValueError:
        raise BuildError(f"the image's OpenAPI schema ({where}) is not valid JSON") from None
    if not isinstance(schema, dict):
        raise BuildError(f"the image's OpenAPI schema ({where}) is not a JSON object")
    return schema


class Interrupted(BuildError):
    """SIGINT/SIGTERM arrived while waiting for the model."""


class RunnerClient:
    """Talks to one runner on 127.0.0.1:port; ``check`` raises when the container or the user gave up."""

    def __init__(self, port: int, check: Callable[[], None], log: Callable[[str], None]) -> None:
        self.port = port
        self.check = check
        self.log = log

    def _request(self, method: str, path: str, body: Any = None, timeout: float = 5.0) -> tuple[int, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            payload = response.read()
        finally:
            connection.close()
        try:
            return response.status, json.loads(payload) if payload else None
        except ValueError:
            return response.status, payload.decode(errors="replace")

    def wait_ready(self, timeout: float) -> None:
        """Poll /health-check every 100 ms until READY, echoing new setup logs; SETUP_FAILED is an error."""
        deadline = time.monotonic() + timeout
        shown = 0
        while True:
            self.check()
            try:
                _, health = self._request("GET", "/health-check", timeout=2)
            except (OSError, http.client.HTTPException):
                health = None
            if isinstance(health, dict):
                logs = str((health.get("setup") or {}).get("logs") or "")
                if len(logs) > shown:
                    self.log(logs[shown:])
                    shown = len(logs)
                status = health.get("status")
                if status == "READY":
                    return
                if status in ("SETUP_FAILED", "DEFUNCT"):
                    last = logs.strip().splitlines()[-1:] or [status]
                    raise BuildError(f"model setup failed ({status}): {last[0]}")
            if time.monotonic() > deadline:
                raise BuildError(f"model setup did not finish within {timeout:g}s (--setup-timeout)")
            time.sleep(POLL_S)

    def predict(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """POST one synchronous prediction (in a thread, so signals and container exit are noticed)."""
        result: list[Any] = []

        def post() -> None:
            try:
                result.append(self._request("POST", "/predictions", {"input": inputs}, timeout=None))  # type: ignore[arg-type]
            except (OSError, http.client.HTTPException) as exc:
                result.append(exc)

        thread = threading.Thread(target=post, daemon=True)
        thread.start()
        while thread.is_alive():
            self.check()
            thread.join(POLL_S)
        if isinstance(result[0], Exception):
            raise BuildError(f"the prediction request failed: {result[0]}")
        status, body = result[0]
        return _check_response(status, body)


def _check_response(status: int, body: Any) -> dict[str, Any]:
    if status == 422 and isinstance(body, dict):
        details = body.get("detail") or []
        if details and isinstance(details, list):
            first = details[0]
            where = [str(part) for part in first.get("loc", []) if part not in ("body", "input")]
            raise UserInputError(f'input "{".".join(where)}": {first.get("msg", "invalid")}')
        raise UserInputError(f"the model rejected the input: {body}")
    if status != 200 or not isinstance(body, dict):
        error = body.get("error") if isinstance(body, dict) else body
        raise BuildError(f"the runner answered HTTP {status}: {error}")
    if body.get("status") != "succeeded":
        raise BuildError(f"prediction {body.get('status')}: {body.get('error') or 'no error message'}")
    return body


def _decode_data_url(url: str) -> tuple[bytes, str]:
    header, _, payload = url.partition(",")
    mime = header[5:].split(";")[0] or "application/octet-stream"
    try:
        data = base64.b64decode(payload) if ";base64" in header else payload.encode()
    except binascii.Error:
        raise BuildError("the model returned a malformed data: URL") from None
    return data, mime


def _is_file(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("data:")


def write_output(output: Any, path: Path | None, schema: dict[str, Any] | None) -> tuple[str | None, list[Path]]:
    """Write file outputs (``output.<ext>``, ``output.<i>.<ext>`` or ``-o PATH``); returns the text to print."""
    values = output if isinstance(output, list) and output and all(_is_file(v) for v in output) else None
    if _is_file(output) or values is not None:
        files = []
        for index, url in enumerate(values if values is not None else [output]):
            data, mime = _decode_data_url(url)
            ext = mimetypes.guess_extension(mime) or ""
            if path is None:
                target = Path(f"output.{index}{ext}" if values is not None else f"output{ext}")
            else:
                target = path.with_name(f"{path.stem}.{index}{path.suffix}") if values is not None else path
            target.write_bytes(data)
            files.append(target)
        return None, files
    output_schema = ((schema or {}).get("components", {}).get("schemas", {}) or {}).get("Output", {})
    if isinstance(output, str):
        text = output
    elif isinstance(output, list) and output_schema.get("x-cog-array-display") == "concatenate":
        text = "".join(str(item) for item in output)
    else:
        text = json.dumps(output, indent=2)
    if path is not None:
        path.write_text(text if text.endswith("\n") else text + "\n")
        return None, [path]
    return text, []


def predict(
    image: Image,
    store: Store,
    inputs: list[str],
    json_input: str | None,
    output: Path | None,
    *,
    gpus: bool = False,
    setup_timeout: float = 300,
    volumes: Sequence[str] = (),
    runtime: str = "auto",
) -> PredictionResult:
    """Run one prediction of ``image`` (a Cog image) and print or write its output, like ``cog predict``."""
    config = image.config.get("config") or {}
    schema = schema_from_label(config)
    payload = parse_input_args(inputs, json_input, schema) if schema is not None else None
    mounts = [parse_volume(v) for v in volumes]
    gpu = gpu_setup() if gpus else None
    reap_dead_runs(store.root / "tmp")
    with rootfs_in_use(image.layers, store) as lower:  # prune leaves it alone meanwhile
        if schema is None:
            schema = schema_from_rootfs(lower, config)
            payload = parse_input_args(inputs, json_input, schema)
        env = [f"PORT={RUNNER_PORT}", "LOG_FORMAT=console", "COG_LOG_LEVEL=warning"]
        with (
            Publisher([Publish("127.0.0.1", 0, RUNNER_PORT)]) as publisher,
            Outbound() as outbound,
            Readiness(publisher.attach, outbound.attach) as ready,
            Workspace(lower, store.root / "tmp") as ws,
        ):
            volumes = [*mounts, *outbound.resolv_conf(ws.dir)]
            spec = build_spec(config, ws.rootfs, RunOptions(env=env, volumes=volumes, network="private", gpu=gpu))
            spec["hooks"] = {"createRuntime": [ready.hook()]}
            log_path = ws.dir / "container.log"
            with open(log_path, "wb") as log, stop_signals() as received:
                container = Container(spec, ws.dir, runtime=runtime, stdin=subprocess.DEVNULL, stdout=log, stderr=log)

                def check() -> None:
                    if received:
                        raise Interrupted(f"interrupted by signal {received[0]}")
                    code = container.wait(0)
                    if code is not None:
                        tail = log_path.read_text(errors="replace").strip().splitlines()[-20:]
                        print("\n".join(tail), file=sys.stderr)
                        raise BuildError(f"the model container exited with code {code} before answering")

                with container:
                    client = RunnerClient(
                        publisher.host_port(), check, lambda text: print(text, end="", file=sys.stderr, flush=True)
                    )
                    client.wait_ready(setup_timeout)
                    body = client.predict(payload or {})
                    container.stop()
    text, files = write_output(body.get("output"), output, schema)
    for path in files:
        print(f"Written output to: {path}", file=sys.stderr)
    if text is not None:
        print(text)
    return PredictionResult(
        status=body["status"],
        output=body.get("output"),
        logs=body.get("logs") or "",
        metrics=body.get("metrics") or {},
        files=files,
        text=text,
    )
