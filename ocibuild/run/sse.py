"""Server-Sent Events read from a streaming HTTP response, one event at a time as it arrives."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Protocol

MAX_EVENT_BYTES = 64 * 1024 * 1024
"""An event larger than this (one file output as a data: URL is one event) is a protocol error."""


class LineReader(Protocol):
    def readline(self, limit: int = -1) -> bytes: ...


def iter_events(response: LineReader) -> Iterator[tuple[str, Any]]:
    """``(event, data)`` for each event of ``response``; ``data`` is parsed JSON (the runner sends JSON);
    comments (keep-alives) are skipped; the iterator ends with the stream."""
    name, data, size = "message", [], 0
    while True:
        line = response.readline(MAX_EVENT_BYTES + 1)
        if not line:
            return
        size += len(line)
        if size > MAX_EVENT_BYTES:
            raise ValueError(f"an event of more than {MAX_EVENT_BYTES} bytes")
        text = line.decode("utf-8", errors="replace").rstrip("\r\n")
        if not text:
            if data:
                yield name, json.loads("\n".join(data))
            name, data, size = "message", [], 0
        elif text.startswith(":"):
            continue
        else:
            field, _, value = text.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
