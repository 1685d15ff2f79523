"""Black-box helpers: start a runner (ours or Cog's) as a subprocess on a free port and talk HTTP to it."""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

RUNNER_ROOT = pathlib.Path(__file__).resolve().parents[2] / "layers" / "runner"
PREDICTORS = pathlib.Path(__file__).resolve().parent / "predictors"


def with_generated_schema(fixture: str, directory: pathlib.Path) -> str:
    """Copy a predictor fixture into ``directory`` with the schema ocibuild generates for it; returns the path."""
    from ocibuild.cog.schema import generate_schema, openapi_json

    shutil.copytree(PREDICTORS / fixture, directory, dirs_exist_ok=True)
    schema = generate_schema(directory, "predict.py:Predictor", None).openapi
    (directory / ".cog").mkdir(exist_ok=True)
    (directory / ".cog" / "openapi_schema.json").write_text(openapi_json(schema))
    return str(directory)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """A keep-alive HTTP client for one server."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.port = port
        self.timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None
    ) -> Reply:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        for attempt in range(2):
            if self._connection is None:
                self._connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self._connection.request(method, path, body=data, headers=all_headers)
                response = self._connection.getresponse()
                payload = response.read()
                if response.getheader("connection", "").lower() == "close":
                    self.close()
                return Reply(response.status, payload, {k.lower(): v for k, v in response.getheaders()})
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
            except BaseException:
                self.close()
                raise
        raise AssertionError("unreachable")

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Reply:
        return self.request("POST", path, body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Reply:
        return self.request("PUT", path, body, **kwargs)

    def predict(self, inputs: dict[str, Any], **envelope: Any) -> Reply:
        return self.post("/predictions", {"input": inputs, **envelope})

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class Server:
    """A runner subprocess serving one fixture directory."""

    def __init__(
        self,
        fixture: str,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        python: str = sys.executable,
        stub: str = "predict.py:Predictor",
        extra_path: str | None = None,
    ) -> None:
        self.port = free_port()
        self.cwd = PREDICTORS / fixture if not os.path.isabs(fixture) else pathlib.Path(fixture)
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("COG_", "PYTHON"))}
        full_env.update(PORT=str(self.port), COG_PREDICT_TYPE_STUB=stub, PYTHONUNBUFFERED="1")
        if extra_path is None:
            full_env["PYTHONPATH"] = str(RUNNER_ROOT)
        else:
            full_env["PATH"] = extra_path + os.pathsep + full_env.get("PATH", "")
        full_env.update(env or {})
        self.log_path = self.cwd / f".runner-{self.port}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [python, "-m", "cog.server.http", "--host", "127.0.0.1", *args],
            cwd=self.cwd,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends the worker too, even one still in setup
        )
        self.client = Client(self.port)

    def wait_until(self, *states: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = Client(self.port, timeout=5).get("/health-check").json
                if last["status"] in states and self.process.poll() is None:  # not a stranger on our port
                    return last
            except (OSError, http.client.HTTPException, ValueError):
                if self.process.poll() is not None:
                    break
            time.sleep(0.02)
        raise AssertionError(f"server never reached {states}; last health {last}; log:\n{self.log}")

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self) -> None:
        self.client.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # the server and its worker (same group)
        self.process.wait(10)
        self._log.close()
        self.log_path.unlink(missing_ok=True)


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A local HTTP server recording webhooks and uploads; ``fail_first`` requests get a 503."""

    fail_first: int = 0
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _record(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.received.append(Received(self.command, self.path, headers, body, time.monotonic()))
                failing = receiver.fail_first > 0
                receiver.fail_first -= 1
                self.send_response(503 if failing else 201 if self.command == "PUT" else 200)
                if self.command == "PUT":
                    self.send_header("Location", f"{receiver.url}/stored{self.path}?signature=abc")
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = _record

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.received):
                return self.received
            time.sleep(0.02)
        raise AssertionError(f"condition not met; received {self.received}")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
