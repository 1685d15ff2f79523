"""SSE as coglet streams it: metric modes, a bounded replay history, and ``error`` events for dropped events."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.runner.harness import Client, with_generated_schema
from tests.runner.test_sse import _events

SSE = {"Accept": "text/event-stream"}
ASYNC = {"Prefer": "respond-async"}


@pytest.fixture
def directory(tmp_path):
    return with_generated_schema("chunks", tmp_path)


def _reattach(server, prediction_id: str, request: dict) -> list[tuple[str, dict]]:
    assert server.client.put(f"/predictions/{prediction_id}", request, headers=ASYNC).status == 202
    time.sleep(0.5)
    return _events(Client(server.port).put(f"/predictions/{prediction_id}", request, headers=SSE).body)


def test_metric_events_use_coglets_mode_names_and_dotted_names_nest(start_server, directory):
    server = start_server(directory)
    events = _events(server.client.post("/predictions", {"input": {"count": 1}}, headers=SSE).body)
    metrics = [data for name, data in events if name == "metric"]
    assert metrics == [
        {"mode": "replace", "name": "temperature", "value": 0.5},
        {"mode": "increment", "name": "tokens", "value": 2},
        {"mode": "increment", "name": "tokens", "value": 3},
        {"mode": "append", "name": "timing.decode.steps", "value": 1},
        {"mode": "append", "name": "timing.decode.steps", "value": 2},
    ]
    final = events[-1][1]["metrics"]
    assert (final["temperature"], final["tokens"], final["timing"]) == (0.5, 5, {"decode": {"steps": [1, 2]}})


def test_reattach_replays_the_whole_history(start_server, directory):
    server = start_server(directory)
    events = _reattach(server, "full", {"input": {"count": 3, "linger": 1}})
    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "completed"
    assert [data["chunk"] for name, data in events if name == "output"] == ["chunk-0", "chunk-1", "chunk-2"]
    assert names.count("metric") == 5


def test_reattach_after_the_history_overflowed_gets_an_error_event(start_server, directory):
    server = start_server(directory, env={"COG_STREAM_HISTORY_CAPACITY": "2"})
    events = _reattach(server, "cut", {"input": {"count": 4, "linger": 2}})
    # start, temperature, 4 chunks, 4 metrics = 10 events, 2 kept.
    assert events == [("error", {"error": "SSE stream replay truncated; events were dropped", "skipped": 8})]


def test_capacity_zero_disables_replay_but_live_events_flow(start_server, directory):
    server = start_server(directory, env={"COG_STREAM_HISTORY_CAPACITY": "0"})
    events = _reattach(server, "live", {"input": {"count": 3, "linger": 1}})
    assert [name for name, _ in events] == ["completed"]
    assert events[0][1]["status"] == "succeeded"
    fresh = _events(server.client.post("/predictions", {"input": {"count": 2}}, headers=SSE).body)
    assert [data["chunk"] for name, data in fresh if name == "output"] == ["chunk-0", "chunk-1"]


def test_a_client_that_falls_too_far_behind_gets_a_lagged_error():
    from cog.server.app import SSE_LAG_LIMIT, Application, Schema
    from cog.server.predictions import Prediction, Request

    async def scenario() -> list[bytes]:
        prediction = Prediction(Request(id="p", input={}))
        app = Application(supervisor=None, schema=Schema(None), on_shutdown=lambda: None)  # type: ignore[arg-type]
        response = app._stream(prediction, replay=False)
        prediction.mark_processing()
        for index in range(SSE_LAG_LIMIT + 5):
            prediction.add_chunk(index)
        prediction.finish("succeeded", [])
        return [chunk async for chunk in response.chunks]

    chunks = asyncio.run(scenario())
    # start + SSE_LAG_LIMIT + 5 outputs + completed: the first SSE_LAG_LIMIT are delivered, 7 are dropped.
    assert len(chunks) == SSE_LAG_LIMIT + 1
    assert chunks[0].startswith(b"event: start\n")
    assert chunks[-1] == b'event: error\ndata: {"error":"SSE stream lagged; events were dropped","skipped":7}\n\n'
