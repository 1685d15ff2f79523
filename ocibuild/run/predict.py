"""``ocibuild predict``: what ``cog predict`` does, without Docker.

Check the inputs against the image's schema, start the image's runner in a network of its own (its port 5000
published on a free port of 127.0.0.1; outbound through slirp4netns where it works), poll
``/health-check`` every 100 ms until READY while echoing the setup logs, POST one prediction, then print the
output (strings plain, other values as JSON) or write file outputs (``data:`` URLs) to disk, and stop.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocibuild import progress
from ocibuild.cogimage import SCHEMA_FILE, WEIGHTS_FILE
from ocibuild.errors import BuildError, UserInputError
from ocibuild.oci.image import Image
from ocibuild.oci.store import Store
from ocibuild.run.extract import rootfs_in_use
from ocibuild.run.gpu import gpu_setup
from ocibuild.run.inputs import parse_input_args, read_json_arg
from ocibuild.run.network import Publish, Publisher, Readiness
from ocibuild.run.outbound import Outbound
from ocibuild.run.outputs import ChunkPrinter, check_output_path, is_streaming, write_output
from ocibuild.run.paths import read_text_in
from ocibuild.run.runtime import Container, reap_dead_runs, stop_signals
from ocibuild.run.spec import BindMount, RunOptions, build_spec, parse_volume
from ocibuild.run.sse import iter_events
from ocibuild.run.weights import missing_weights
from ocibuild.run.workspace import Workspace

POLL_S = 0.1
SETUP_NOTE_S = 10.0
"""How often a long setup() says it is still running."""
SCHEMA_LABEL = "run.cog.openapi_schema"
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
        reporter = progress.active()
        started = time.monotonic()
        deadline, note = started + timeout, started + SETUP_NOTE_S
        shown, announced = 0, False
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
                if status in ("STARTING", "READY") and not announced:  # a quick setup may be over at the first look
                    reporter.step("running setup()")
                    announced = True
                if status == "READY":
                    reporter.step(f"model ready ({time.monotonic() - started:.1f}s)")
                    return
                if status in ("SETUP_FAILED", "DEFUNCT"):
                    last = logs.strip().splitlines()[-1:] or [status]
                    raise BuildError(f"model setup failed ({status}): {last[0]}")
            now = time.monotonic()
            if now > deadline:
                raise BuildError(f"model setup did not finish within {timeout:g}s (--setup-timeout)")
            if now > note:
                reporter.step(f"{'setup()' if announced else 'the runner'} still starting ({now - started:.0f}s)")
                note = now + SETUP_NOTE_S
            time.sleep(POLL_S)

    def predict(self, inputs: dict[str, Any], on_chunk: Callable[[Any], None] | None = None) -> dict[str, Any]:
        """POST one prediction (in a thread, so signals and container exit are noticed); with ``on_chunk``, as
        Server-Sent Events, each output chunk handed to ``on_chunk`` as it arrives."""
        result: list[Any] = []

        def post() -> None:
            try:
                if on_chunk is None:
                    result.append(self._request("POST", "/predictions", {"input": inputs}, timeout=None))  # type: ignore[arg-type]
                else:
                    result.append(self._stream(inputs, on_chunk))
            except (OSError, http.client.HTTPException, ValueError) as exc:
                result.append(exc)

        thread = threading.Thread(target=post, daemon=True)
        thread.start()
        while thread.is_alive():
            self.check()
            thread.join(POLL_S)
        if isinstance(result[0], Exception):
            raise BuildError(f"the prediction request failed: {result[0]}")
        status, body = result[0]
        if on_chunk is None and isinstance(body, dict) and body.get("logs"):  # streamed logs are shown already
            self.log(str(body["logs"]))
        return _check_response(status, body)

    def _stream(self, inputs: dict[str, Any], on_chunk: Callable[[Any], None]) -> tuple[int, Any]:
        """The prediction as SSE: output chunks to ``on_chunk``, logs to stderr; the ``completed`` snapshot."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port)
        try:
            headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
            connection.request("POST", "/predictions", body=json.dumps({"input": inputs}).encode(), headers=headers)
            response = connection.getresponse()
            if not response.getheader("Content-Type", "").startswith("text/event-stream"):
                payload = response.read()
                try:
                    return response.status, json.loads(payload) if payload else None
                except ValueError:
                    return response.status, payload.decode(errors="replace")
            for event, data in iter_events(response):
                if event == "output" and isinstance(data, dict):
                    on_chunk(data.get("chunk"))
                elif event == "log" and isinstance(data, dict):
                    print(data.get("data", ""), end="", file=sys.stderr, flush=True)
                elif event == "completed":
                    return 200, data
                elif event == "error":
                    return 200, {"status": "failed", "error": (data or {}).get("error", "the event stream failed")}
            return 200, {"status": "failed", "error": "the event stream ended before the prediction completed"}
        finally:
            connection.close()


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
        error = str(body.get("error") or "no error message")
        for prefix in ("Prediction failed: ", "prediction failed: "):  # the runner's own prefix, said once
            error = error.removeprefix(prefix)
        raise BuildError(f"prediction {body.get('status')}: {error}")
    return body


def predict(
    image: Image,
    store: Store,
    inputs: list[str],
    json_input: str | None,
    output: Path | None,
    *,
    env: Sequence[str] = (),
    gpus: bool = False,
    setup_timeout: float = 300,
    volumes: Sequence[str] = (),
    runtime: str = "auto",
    mounts: Sequence[BindMount] = (),
) -> PredictionResult:
    """Run one prediction of ``image`` (a Cog image) and print or write its output, like ``cog predict``.

    ``json_input`` may be ``@FILE`` or ``@-`` (stdin); ``env`` are ``K=V`` for the container, after the runner's
    own settings; a ``@cog.streaming`` model's output chunks are printed as they arrive; ``mounts`` are extra
    bind mounts (managed weights, ready)."""
    check_output_path(output)
    json_input = read_json_arg(json_input)
    config = image.config.get("config") or {}
    schema = schema_from_label(config)
    payload = parse_input_args(inputs, json_input, schema) if schema is not None else None
    mounts = [*mounts, *(parse_volume(v) for v in volumes)]
    gpu = gpu_setup() if gpus else None
    reporter = progress.active()
    reap_dead_runs(store.root / "tmp")
    reporter.step("starting the model container")
    with rootfs_in_use(image.layers, store) as lower:  # prune leaves it alone meanwhile
        if schema is None:
            schema = schema_from_rootfs(lower, config)
            payload = parse_input_args(inputs, json_input, schema)
        weights_json = read_text_in(lower, f"{config.get('WorkingDir') or '/src'}/{WEIGHTS_FILE}")
        if missing := missing_weights(weights_json, [m.destination for m in mounts]):
            raise BuildError(
                f"the image's managed weights ({', '.join(missing)}) are not beside it here (a registry image is "
                "pulled alone); run the OCI layout or the project, or mount them with -v DIR:TARGET"
            )
        env = [f"PORT={RUNNER_PORT}", "LOG_FORMAT=console", "COG_LOG_LEVEL=warning", *env]
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
                    printer = ChunkPrinter(schema) if is_streaming(schema) else None
                    body = client.predict(payload or {}, printer)
                    container.stop()
    if printer is not None:
        printer.finish()
    text, files = write_output(body.get("output"), output, schema)
    for path in files:
        print(f"Written output to: {path}", file=sys.stderr)
    if text is not None and not (printer is not None and printer.printed):
        print(text)
    return PredictionResult(
        status=body["status"],
        output=body.get("output"),
        logs=body.get("logs") or "",
        metrics=body.get("metrics") or {},
        files=files,
        text=text,
    )
