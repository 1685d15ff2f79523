"""``Accept: text/event-stream`` on a ``@cog.streaming`` generator predictor."""

from __future__ import annotations

import json


def _events(body: bytes) -> list[tuple[str, dict]]:
    events = []
    for block in body.decode().strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_streaming_prediction_emits_cog_events(start_server):
    server = start_server("stream")
    reply = server.client.post(
        "/predictions", {"id": "s1", "input": {"words": 2}}, headers={"Accept": "text/event-stream"}
    )
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/event-stream"
    assert reply.headers["cache-control"] == "no-cache"
    events = _events(reply.body)
    assert events[0] == ("start", {"id": "s1", "status": "processing"})
    assert [data for name, data in events if name == "output"] == [
        {"chunk": "w0 ", "index": 0},
        {"chunk": "w1 ", "index": 1},
    ]
    assert ("log", {"data": "word 0\n", "source": "stdout"}) in events
    assert ("metric", {"mode": "replace", "name": "words", "value": 2}) in events
    name, final = events[-1]
    assert name == "completed"
    assert final["output"] == ["w0 ", "w1 "]
    assert final["status"] == "succeeded"
    assert final["logs"] == "word 0\nword 1\n"
    assert final["metrics"]["words"] == 2
    order = [name for name, _ in events]
    assert order.index("log") < order.index("output")
    plain = server.client.predict({"words": 2}).json
    assert plain["output"] == ["w0 ", "w1 "]
    invalid = server.client.post("/predictions", {"input": {"words": 99}}, headers={"Accept": "text/event-stream"})
    assert invalid.status == 422


def test_streaming_is_refused_without_x_cog_streaming(echo):
    reply = echo.client.post("/predictions", {"input": {"prompt": "a"}}, headers={"Accept": "text/event-stream"})
    assert reply.status == 406
    assert reply.json == {
        "error": "This model does not support streaming responses. Add @cog.streaming to predict() to enable SSE."
    }


def test_output_webhooks_for_each_chunk(start_server, receiver):
    server = start_server("stream")
    server.client.post(
        "/predictions", {"input": {"words": 2}, "webhook": receiver.url}, headers={"Prefer": "respond-async"}
    )
    hooks = receiver.wait_for(lambda got: got and got[-1].json["status"] == "succeeded")
    outputs = [item.json.get("output") for item in hooks if item.json["status"] == "processing"]
    assert ["w0 "] in outputs
    assert ["w0 ", "w1 "] in outputs


def test_sse_reattach_with_put(start_server):
    server = start_server("stream")
    request = {"input": {"words": 3, "delay": 0.2}}
    server.client.put("/predictions/s2", request, headers={"Prefer": "respond-async"})
    from tests.runner.harness import Client

    reply = Client(server.port).put("/predictions/s2", request, headers={"Accept": "text/event-stream"})
    events = _events(reply.body)
    assert events[0][0] == "start"
    assert events[-1][0] == "completed"
    assert [data["index"] for name, data in events if name == "output"] == [0, 1, 2]
