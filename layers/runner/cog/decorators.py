"""``@cog.streaming`` and ``@cog.concurrent``: markers read by the schema generator and the runner."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def streaming(fn: F | None = None) -> Any:
    """Opt a generator ``run()``/``predict()`` into Server-Sent Events (``Accept: text/event-stream``)."""

    def mark(inner: F) -> F:
        inner.__cog_streaming__ = True  # type: ignore[attr-defined]
        return inner

    return mark if fn is None else mark(fn)


def concurrent(fn: F | None = None, *, max: int = 1) -> Any:
    """Allow up to ``max`` concurrent predictions of an async handler (the image sets ``COG_MAX_CONCURRENCY``)."""
    if isinstance(max, bool) or not isinstance(max, int):
        raise TypeError("concurrent max must be an integer")
    if max < 1:
        raise ValueError("concurrent max must be at least 1")

    def mark(inner: F) -> F:
        if max > 1 and not (inspect.iscoroutinefunction(inner) or inspect.isasyncgenfunction(inner)):
            raise TypeError("concurrent max greater than 1 requires an async function")
        inner.__cog_concurrent_max__ = max  # type: ignore[attr-defined]
        return inner

    if fn is None:
        return mark
    if not callable(fn):
        raise TypeError("concurrent must be used as @concurrent or @concurrent(max=...)")
    return mark(fn)
