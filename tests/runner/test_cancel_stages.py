"""A cancel wins at every stage of a prediction: input download, output encoding and output upload."""

from __future__ import annotations

import asyncio
import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.runner.harness import Client

STUBS = ["predict.py:Predictor", "predict.py:AsyncPredictor"]
STAGE_S = 60
"""How long each slow stage takes when nothing cancels it (predictors/cancelstages sleeps as long)."""
PROMPT_S = STAGE_S / 2
"""A cancel counts as prompt well under the stage's own time, with room for a loaded machine."""


class Stalling:
    """An HTTP server that starts answering a GET (or reads a PUT) and then stalls for ``stall_s``."""

    def __init__(self, stall_s: float = STAGE_S) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "100")
                self.end_headers()
                self.wfile.write(b"x")
                self.wfile.flush()
                outer.started.set()
                outer.release.wait(stall_s)

            def do_PUT(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.started.set()
                outer.release.wait(stall_s)
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stalling() -> Iterator[Stalling]:
    server = Stalling()
    yield server
    server.close()


def _cancel_when(server, inputs: dict[str, Any], ready: Any) -> tuple[dict[str, Any], float]:
    """Start a sync prediction, cancel it once ``ready()``; returns its response and the seconds after the cancel."""
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(reply=Client(server.port).predict(inputs, id="c")))
    thread.start()
    deadline = time.monotonic() + PROMPT_S
    while not ready():
        assert time.monotonic() < deadline, "the prediction never reached the stage"
        time.sleep(0.02)
    cancelled_at = time.monotonic()
    assert server.client.post("/predictions/c/cancel").status == 200
    thread.join(STAGE_S + 10)
    return result["reply"].json, time.monotonic() - cancelled_at


@pytest.mark.parametrize("stub", STUBS)
def test_cancel_while_an_input_downloads(start_server, stalling, stub):
    server = start_server("cancelstages", stub=stub)
    body, seconds = _cancel_when(server, {"stage": "plain", "image": stalling.url + "/in.png"}, stalling.started.is_set)
    assert body["status"] == "canceled", body
    assert "user code ran" not in body["logs"]
    assert seconds < PROMPT_S
    assert server.client.predict({"stage": "plain"}).json["status"] == "succeeded"


@pytest.mark.parametrize("stage", ["encode", "encode-chunk"])
@pytest.mark.parametrize("stub", STUBS)
def test_cancel_while_an_output_is_encoded(start_server, tmp_path, stub, stage):
    server = start_server("cancelstages", stub=stub)
    marker = tmp_path / "reading"
    body, seconds = _cancel_when(server, {"stage": stage, "marker": str(marker)}, marker.exists)
    assert body["status"] == "canceled", body
    assert "output" not in body
    assert seconds < PROMPT_S


@pytest.mark.parametrize("stage", ["plain", "upload-chunk"])
@pytest.mark.parametrize("stub", STUBS)
def test_cancel_while_an_output_uploads(start_server, stalling, stub, stage):
    server = start_server("cancelstages", stub=stub, args=("--upload-url", stalling.url + "/upload/"))
    body, seconds = _cancel_when(server, {"stage": stage}, stalling.started.is_set)
    assert body["status"] == "canceled", body
    assert "output" not in body
    assert seconds < PROMPT_S


def test_a_result_already_on_its_way_loses_to_an_acknowledged_cancel():
    """The worker may report success just as the server answers a cancel with 200: the prediction is canceled."""
    from cog.server.predictions import Prediction, Request
    from cog.server.protocol import Result
    from cog.server.supervisor import Supervisor

    async def scenario() -> tuple[bool, str, object]:
        supervisor = Supervisor(slots=1, mode="predict", upload_url=None, setup_timeout=None)
        prediction = Prediction(Request(id="late", input={}))
        supervisor.active[prediction.id] = prediction
        acknowledged = supervisor.cancel("late")
        supervisor._on_done("late", Result("succeeded", "output"))
        return acknowledged, prediction.status, prediction.snapshot().get("output")

    assert asyncio.run(scenario()) == (True, "canceled", None)
