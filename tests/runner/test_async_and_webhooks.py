"""``Prefer: respond-async``, webhooks (filters, auth, throttled logs, retried completion) and PUT re-attach."""

from __future__ import annotations

import itertools
import time

ASYNC = {"Prefer": "respond-async"}


def test_async_prediction_sends_ordered_webhooks(start_server, receiver):
    server = start_server("echo", env={"WEBHOOK_AUTH_TOKEN": "tok"})
    request = {"id": "a1", "input": {"prompt": "hi", "mode": "logs", "n": 3, "scale": 0.3}, "webhook": receiver.url}
    reply = server.client.post("/predictions", request, headers={**ASYNC, "traceparent": "00-abc-def-01"})
    assert reply.status == 202
    assert reply.json == {"id": "a1", "status": "starting"}
    hooks = receiver.wait_for(lambda got: any(item.json["status"] == "succeeded" for item in got))
    states = [item.json for item in hooks]
    assert states[0] == {"id": "a1", "status": "processing", "logs": "", "metrics": {}}
    assert all(state["status"] == "processing" for state in states[:-1])
    final = states[-1]
    assert final["output"] == "hihihi|0.3|False|ab|None|None"
    assert final["logs"] == "running logs\nto stderr\nline 0\nline 1\nline 2\n"
    assert "predict_time" in final["metrics"]
    log_sends = [item.at for item in hooks if item.json["status"] == "processing" and item.json["logs"]]
    assert all(later - earlier >= 0.45 for earlier, later in itertools.pairwise(log_sends))
    for item in hooks:
        assert item.headers["authorization"] == "Bearer tok"
        assert item.headers["content-type"] == "application/json"
        assert item.headers["traceparent"] == "00-abc-def-01"


def test_webhook_events_filter_completed_only(echo, receiver):
    request = {"input": {"prompt": "x"}, "webhook": receiver.url, "webhook_events_filter": ["completed"]}
    echo.client.post("/predictions", request, headers=ASYNC)
    receiver.wait_for(lambda got: len(got) == 1)
    time.sleep(0.2)
    assert len(receiver.received) == 1
    assert receiver.received[0].json["status"] == "succeeded"


def test_completion_webhook_is_retried(echo):
    from tests.runner.harness import Receiver

    flaky = Receiver(fail_first=2)
    try:
        request = {"input": {"prompt": "x"}, "webhook": flaky.url, "webhook_events_filter": ["completed"]}
        echo.client.post("/predictions", request, headers=ASYNC)
        flaky.wait_for(lambda got: len(got) == 3)
        assert [item.json["status"] for item in flaky.received] == ["succeeded"] * 3
    finally:
        flaky.close()


def test_sync_prediction_with_webhook_answers_and_notifies(echo, receiver):
    reply = echo.client.predict({"prompt": "x"}, webhook=receiver.url)
    assert reply.json["status"] == "succeeded"
    receiver.wait_for(lambda got: got and got[-1].json["status"] == "succeeded")


def test_put_is_idempotent_while_in_flight(echo):
    request = {"input": {"prompt": "hi", "mode": "slow", "scale": 0.6}}
    assert echo.client.put("/predictions/r1", request, headers=ASYNC).json == {"id": "r1", "status": "starting"}
    again = echo.client.put("/predictions/r1", {"input": {"prompt": "other"}})
    assert again.status == 202
    body = again.json
    assert body["id"] == "r1"
    assert body["status"] == "processing"
    assert body["input"] == {
        "prompt": "hi",
        "mode": "slow",
        "scale": 0.6,
        "items": None,
        "note": None,
        "image": None,
    }
    deadline = time.monotonic() + 5
    while echo.client.get("/health-check").json["status"] == "BUSY" and time.monotonic() < deadline:
        time.sleep(0.05)
    done = echo.client.put("/predictions/r1", {"input": {"prompt": "hi"}})
    assert (done.status, done.json["status"]) == (200, "succeeded")


def test_put_rejects_mismatched_id(echo):
    reply = echo.client.put("/predictions/p9", {"id": "other", "input": {"prompt": "hi"}})
    assert reply.status == 422
    assert reply.json == {
        "detail": [
            {"loc": ["body", "id"], "msg": "prediction ID must match the ID supplied in the URL", "type": "value_error"}
        ]
    }
