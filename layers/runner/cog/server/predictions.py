"""Server side: the state of one prediction and the events it emits (for SSE and webhooks)."""

from __future__ import annotations

import asyncio
import collections
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TERMINAL = ("succeeded", "failed", "canceled")
EVENTS = ("start", "output", "logs", "completed")
DEFAULT_HISTORY_CAPACITY = 1024
"""Events kept per prediction for SSE replay, unless ``COG_STREAM_HISTORY_CAPACITY`` says otherwise (0: none)."""

Event = tuple[str, dict[str, Any]]
Listener = Callable[[str, dict[str, Any]], None]
"""Called with an SSE-style event name (start, output, log, metric, completed) and its data."""


def history_capacity() -> int:
    """``COG_STREAM_HISTORY_CAPACITY`` as a count; unset or not a non-negative integer gives the default."""
    value = os.environ.get("COG_STREAM_HISTORY_CAPACITY", "")
    return int(value) if value.isdigit() else DEFAULT_HISTORY_CAPACITY


@dataclass
class Request:
    """A validated prediction request."""

    id: str
    input: dict[str, Any]
    context: dict[str, str] = field(default_factory=dict)
    webhook: str | None = None
    webhook_events_filter: tuple[str, ...] = EVENTS
    training: bool = False


class Prediction:
    """One prediction as the server tracks it, from ``starting`` to a terminal status."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.id = request.id
        self.status = "starting"
        self.output: Any = None
        self.error: str | None = None
        self.detail: list[dict[str, Any]] | None = None
        self.logs: list[str] = []
        self.metrics: dict[str, Any] = {}
        self.chunks: list[Any] | None = None
        self.started_at = time.perf_counter()
        self.cancel_requested = False
        self.completed = asyncio.get_running_loop().create_future()
        self.listeners: list[Listener] = []
        self.history: collections.deque[Event] = collections.deque()
        self.history_capacity = history_capacity()
        self.history_skipped = 0
        """Events dropped from the front of ``history`` because it was full."""

    # -- views -------------------------------------------------------------------------------------
    def snapshot(self, with_input: bool = False) -> dict[str, Any]:
        """The state Cog sends in responses and webhooks: id, status, logs, metrics, output, error."""
        state: dict[str, Any] = {"id": self.id, "status": self.status, "logs": "".join(self.logs)}
        state["metrics"] = dict(self.metrics)
        if with_input:
            state["input"] = self.request.input
        output = self.output if self.status in TERMINAL else (list(self.chunks) if self.chunks else None)
        if output is not None or self.status == "succeeded":
            state["output"] = output
        if self.error is not None:
            state["error"] = self.error
        return state

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    # -- transitions (driven by worker messages) -----------------------------------------------------
    def _emit(self, event: str, data: dict[str, Any]) -> None:
        if self.history_capacity:
            if len(self.history) == self.history_capacity:
                self.history.popleft()
                self.history_skipped += 1
            self.history.append((event, data))
        for listener in list(self.listeners):
            listener(event, data)

    def mark_processing(self) -> None:
        self.status = "processing"
        self._emit("start", {"id": self.id, "status": self.status})

    def add_log(self, source: str, text: str) -> None:
        self.logs.append(text)
        self._emit("log", {"source": source, "data": text})

    def add_metric(self, name: str, value: Any, mode: str) -> None:
        """Apply a metric (mode ``replace``, ``increment`` or ``append``); ``a.b`` names nest, as in coglet."""
        *parents, leaf = name.split(".")
        target = self.metrics
        for part in parents:
            if not isinstance(target.get(part), dict):
                target[part] = {}
            target = target[part]
        _apply_metric(target, leaf, value, mode)
        self._emit("metric", {"name": name, "value": value, "mode": mode})

    def add_chunk(self, chunk: Any) -> None:
        if self.chunks is None:
            self.chunks = []
        self.chunks.append(chunk)
        self._emit("output", {"chunk": chunk, "index": len(self.chunks) - 1})

    def finish(self, status: str, output: Any = None, error: str | None = None, detail: Any = None) -> None:
        """Record the terminal state, then notify listeners and resolve ``completed``."""
        if self.done:
            return
        self.status = status
        self.output = output if status == "succeeded" else None
        self.error = error
        self.detail = detail
        self.metrics["predict_time"] = time.perf_counter() - self.started_at
        self._emit("completed", self.snapshot())
        if not self.completed.done():
            self.completed.set_result(None)


def _apply_metric(metrics: dict[str, Any], key: str, value: Any, mode: str) -> None:
    if mode == "increment":
        current = metrics.get(key, 0)
        numbers = (int, float)
        if isinstance(current, numbers) and isinstance(value, numbers) and not isinstance(value, bool):
            metrics[key] = current + value
    elif mode == "append":
        current = metrics.get(key, [])
        metrics[key] = [*current, value] if isinstance(current, list) else [current, value]
    elif value is None:
        metrics.pop(key, None)
    else:
        metrics[key] = value
