"""Cancel (sync and async predictors), 409 only when every slot is busy, and concurrency slots.

No sleeps to let something happen: each test waits for the state it needs (a log line, a busy slot), and each
bound on time is a fraction of how long the predictor would otherwise run, so a loaded machine only slows it."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from tests.runner.harness import Client

ASYNC = {"Prefer": "respond-async"}


def _wait_status(server, status: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while server.client.get("/health-check").json["status"] != status:
        assert time.monotonic() < deadline, f"server never became {status}"
        time.sleep(0.02)


def _wait_idle(server, timeout: float = 10.0) -> None:
    _wait_status(server, "READY", timeout)


def test_cancel_interrupts_a_sync_predictor_mid_call(echo, receiver):
    request = {"id": "c1", "input": {"prompt": "a", "mode": "slow", "scale": 30}, "webhook": receiver.url}
    assert echo.client.post("/predictions", request, headers=ASYNC).status == 202
    receiver.wait_for(lambda got: any("running slow" in (hook.json.get("logs") or "") for hook in got))  # mid-call
    assert echo.client.post("/predictions/c1/cancel").json == {}
    # the call has 30 s to go: a canceled webhook within 10 s means the cancel cut it short
    hooks = receiver.wait_for(lambda got: got and got[-1].json["status"] == "canceled", timeout=10)
    assert "output" not in hooks[-1].json
    assert echo.client.post("/predictions/c1/cancel").status == 404
    _wait_idle(echo)
    assert echo.client.predict({"prompt": "b"}).json["status"] == "succeeded"


def test_cancel_a_sync_request_from_another_client(echo):
    result = {}

    def call() -> None:
        result["reply"] = Client(echo.port).predict({"prompt": "a", "mode": "slow", "scale": 10}, id="c2")

    thread = threading.Thread(target=call)
    thread.start()
    _wait_status(echo, "BUSY")  # c2 holds the slot
    assert echo.client.post("/predictions/c2/cancel").status == 200
    thread.join(5)
    assert result["reply"].status == 200
    assert result["reply"].json["status"] == "canceled"
    _wait_idle(echo)


def test_client_disconnect_cancels_a_sync_prediction(echo):
    client = Client(echo.port, timeout=0.3)
    try:
        client.predict({"prompt": "a", "mode": "slow", "scale": 10})
    except TimeoutError:
        client.close()
    _wait_idle(echo, timeout=3)


def test_unknown_prediction_cancel_is_404(echo):
    reply = echo.client.post("/predictions/nope/cancel")
    assert (reply.status, reply.json) == (404, {})


def test_409_only_when_the_slot_is_busy(echo):
    echo.client.post(
        "/predictions", {"id": "busy", "input": {"prompt": "a", "mode": "slow", "scale": 30}}, headers=ASYNC
    )
    assert echo.client.get("/health-check").json["status"] == "BUSY"
    reply = echo.client.predict({"prompt": "b"})
    assert reply.status == 409
    assert reply.json == {"error": "At capacity - all prediction slots busy", "status": "failed"}
    assert echo.client.post("/predictions/busy/cancel").status == 200
    _wait_idle(echo)


def test_back_to_back_sequential_requests_never_get_409(echo):
    statuses = [echo.client.predict({"prompt": "x"}).status for _ in range(300)]
    assert statuses.count(200) == 300


def test_async_predictor_runs_concurrently_in_slots(start_server):
    server = start_server("asyncsleep", env={"COG_MAX_CONCURRENCY": "4"})

    def call(tag: int):
        return Client(server.port, timeout=60).predict({"seconds": 5, "tag": str(tag)})

    started = time.monotonic()
    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(call, range(6)))
    elapsed = time.monotonic() - started
    statuses = sorted(reply.status for reply in replies)
    assert statuses == [200, 200, 200, 200, 409, 409]  # 6 requests within 5 s: 4 slots, 2 refused
    assert elapsed < 10, "the 4 ran side by side (one after another they take 20 s)"
    for reply in replies:
        if reply.status == 200:
            tag = reply.json["output"].split()[-1]
            assert reply.json["logs"] == f"start {tag}\n"


def test_async_predictor_cancel(start_server):
    server = start_server("asyncsleep", env={"COG_MAX_CONCURRENCY": "2"})
    server.client.post("/predictions", {"id": "a1", "input": {"seconds": 10}}, headers=ASYNC)
    result = {}
    thread = threading.Thread(
        target=lambda: result.setdefault("r", Client(server.port).put("/predictions/a2", {"input": {"seconds": 10}}))
    )
    thread.start()
    _wait_status(server, "BUSY")  # a1 and a2 hold both slots
    assert server.client.post("/predictions/a1/cancel").status == 200
    assert server.client.post("/predictions/a2/cancel").status == 200
    thread.join(5)
    assert result["r"].json["status"] == "canceled"
    _wait_idle(server)


def test_sync_predictor_refuses_concurrency_above_one(start_server):
    server = start_server("echo", env={"COG_MAX_CONCURRENCY": "2"}, wait=("SETUP_FAILED",))
    logs = server.client.get("/health-check").json["setup"]["logs"]
    assert "COG_MAX_CONCURRENCY > 1 requires an async" in logs
