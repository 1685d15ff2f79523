"""Worker side: route ``print()`` output to the prediction that wrote it."""

from __future__ import annotations

import contextvars
import io
import threading
from collections.abc import Callable

LogSink = Callable[["str | None", str, str], None]
"""Called with (prediction id or None for setup, source "stdout"/"stderr", text)."""

current_prediction: contextvars.ContextVar[str | None] = contextvars.ContextVar("cog_prediction", default=None)
"""The prediction running in this context; set by the worker around each prediction."""


class Attribution:
    """Which prediction owns output written outside any prediction context (e.g. from user threads)."""

    sole: str | None = None


class LineStream(io.TextIOBase):
    """A text stream that forwards whole lines, per prediction, to a sink."""

    def __init__(self, source: str, sink: LogSink, fileno: int) -> None:
        super().__init__()
        self.source = source
        self._sink = sink
        self._fileno = fileno
        self._buffers: dict[str | None, str] = {}
        self._lock = threading.Lock()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fileno

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        owner = current_prediction.get() or Attribution.sole
        with self._lock:
            pending = self._buffers.get(owner, "") + text
            head, newline, tail = pending.rpartition("\n")
            self._buffers[owner] = tail
        if newline:
            self._sink(owner, self.source, head + newline)
        return len(text)

    def flush(self, owner: str | bool | None = False) -> None:
        """Forward buffered partial lines (of one owner, or of every owner when none is given)."""
        with self._lock:
            owners = list(self._buffers) if owner is False else [owner]
            pending = [(key, self._buffers.pop(key, "")) for key in owners]
        for key, text in pending:
            if text:
                self._sink(key, self.source, text)
