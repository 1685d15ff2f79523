"""The per-prediction scope: ``current_scope()``, its ``context`` and metric recording."""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable, MutableMapping
from typing import Any

METRIC_MODES = ("replace", "increment", "append")
"""Modes as coglet spells them on the wire; ``record_metric`` also takes ``incr`` for ``increment``."""
_SEGMENT = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|_(?=[A-Za-z0-9]))*$")
_MAX_KEY_CHARS = 128
_MAX_SEGMENTS = 4

MetricSink = Callable[[str, Any, str], None]


def check_metric_key(key: str) -> None:
    """Raise ``ValueError`` unless ``key`` is a valid, non-reserved metric name."""
    segments = key.split(".")
    if len(key) > _MAX_KEY_CHARS or len(segments) > _MAX_SEGMENTS or not all(map(_SEGMENT.match, segments)):
        raise ValueError(f"invalid metric name {key!r}")
    if key == "predict_time" or segments[0] == "cog":
        raise ValueError(f"metric name {key!r} is reserved")


class Metrics(MutableMapping[str, Any]):
    """Dict-like view of a prediction's metrics; writes are forwarded to the runner."""

    def __init__(self, sink: MetricSink | None) -> None:
        self._values: dict[str, Any] = {}
        self._sink = sink

    def record(self, key: str, value: Any, mode: str = "replace") -> None:
        """Set (``replace``), add to (``incr``) or append to (``append``) a metric; ``None`` deletes it."""
        mode = "increment" if mode == "incr" else mode
        if mode not in METRIC_MODES:
            raise TypeError(f"Invalid metric mode: {mode!r}. Expected 'replace', 'incr', or 'append'.")
        check_metric_key(key)
        if mode == "increment" and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise TypeError(f"increment mode requires an int or float, got {type(value).__name__}")
        if value is None:
            self._values.pop(key, None)
        elif mode == "increment":
            self._values[key] = self._values.get(key, 0) + value
        elif mode == "append":
            self._values.setdefault(key, []).append(value)
        else:
            self._values[key] = value
        if self._sink is not None:
            self._sink(key, value, mode)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.record(key, value)

    def __delitem__(self, key: str) -> None:
        if key not in self._values:
            raise KeyError(key)
        self.record(key, None)

    def __iter__(self) -> Any:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


class Scope:
    """What user code can see of the running prediction."""

    def __init__(self, context: dict[str, str] | None = None, sink: MetricSink | None = None) -> None:
        self.context: dict[str, str] = dict(context or {})
        self.metrics = Metrics(sink)

    def record_metric(self, key: str, value: Any, mode: str = "replace") -> None:
        self.metrics.record(key, value, mode)


_NO_SCOPE = Scope()
_current: contextvars.ContextVar[Scope] = contextvars.ContextVar("cog_scope", default=_NO_SCOPE)


_sole_scope: Scope | None = None


def current_scope() -> Scope:
    """The scope of the prediction running in this context (a no-op scope outside predictions).

    Threads started by user code do not inherit the context; they see the running prediction's scope when
    exactly one prediction is running.
    """
    scope = _current.get()
    if scope is _NO_SCOPE:
        if _sole_scope is not None:
            return _sole_scope
        scope.metrics._values.clear()
    return scope


def set_sole_scope(scope: Scope | None) -> None:
    """Record the scope of the only running prediction (``None`` when zero or several run)."""
    global _sole_scope
    _sole_scope = scope


def enter_scope(scope: Scope) -> contextvars.Token[Scope]:
    """Make ``scope`` current (used by the worker around each prediction)."""
    return _current.set(scope)


def leave_scope(token: contextvars.Token[Scope]) -> None:
    _current.reset(token)
