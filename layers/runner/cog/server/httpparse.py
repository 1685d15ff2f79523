"""Incremental, bounded parsing of HTTP/1.1 requests.

Bytes are consumed from the front of the connection's buffer as they arrive, so each byte is examined a bounded
number of times however the request is split into reads or chunks. Framing is strict: anything a proxy could read
differently (duplicate or conflicting lengths, odd chunk sizes, bare LF) is refused with a status and a reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 100 * 1024 * 1024
MAX_CHUNK_LINE_BYTES = 4 * 1024
MAX_TRAILER_BYTES = 16 * 1024
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_DIGITS = re.compile(rb"[0-9]{1,19}")
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;[^\r\n]{0,%d})?\r\n" % (MAX_CHUNK_LINE_BYTES - 17))
_VERSIONS = ("HTTP/1.0", "HTTP/1.1")


class BadRequest(Exception):
    """The request cannot be read; answer `status` with the reason and close the connection."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class Head:
    """The request line and headers (names lower-cased)."""

    method: str
    target: str
    version: str
    headers: dict[str, str]


class RequestParser:
    """Feed it the connection buffer; it returns each request once all of its bytes are there."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._head: Head | None = None
        self._state = "head"
        self._scanned = 0
        self._remaining = 0
        self._trailer_bytes = 0
        self._body = bytearray()

    @property
    def reading_head(self) -> bool:
        """True until the headers of the current request are complete."""
        return self._state == "head"

    def parse(self, buffer: bytearray) -> tuple[Head, bytes] | None:
        """Consume what belongs to the current request; return it when complete, else None (BadRequest if bad)."""
        position = 0
        try:
            while True:
                state = self._state
                if state == "head":
                    position = self._read_head(buffer)
                    if not position:
                        return None
                elif state in ("length", "chunk-data"):
                    end = min(position + self._remaining, len(buffer))
                    self._body += buffer[position:end]
                    self._remaining -= end - position
                    position = end
                    if self._remaining:
                        return None
                    if state == "length":
                        return self._finish()
                    self._state = "chunk-end"
                elif state == "chunk-end":
                    if len(buffer) < position + 2:
                        return None
                    if buffer[position : position + 2] != b"\r\n":
                        raise BadRequest("chunk data is not followed by CRLF")
                    position += 2
                    self._state = "chunk-size"
                elif state == "chunk-size":
                    match = _CHUNK_LINE.match(buffer, position)
                    if match is None:
                        _check_partial_chunk_line(buffer, position)
                        return None
                    position = match.end()
                    self._start_chunk(int(match[1], 16))
                else:
                    limit = MAX_TRAILER_BYTES - self._trailer_bytes
                    end = _line_end(buffer, position, limit, "chunked trailers too large")
                    if end < 0:
                        return None
                    line = bytes(buffer[position:end])
                    self._trailer_bytes += end + 2 - position
                    position = end + 2
                    if not line:
                        return self._finish()
                    _split_header(line)
        finally:
            del buffer[:position]

    def _read_head(self, buffer: bytearray) -> int:
        """Parse the head at the start of `buffer`; the offset just past it, or 0 while incomplete."""
        end = buffer.find(b"\r\n\r\n", self._scanned, MAX_HEADER_BYTES + 4)
        if end < 0:
            if len(buffer) >= MAX_HEADER_BYTES + 4:
                raise BadRequest("request header too large", 431)
            self._scanned = max(0, len(buffer) - 3)
            return 0
        head = _parse_head(bytes(buffer[:end]))
        self._head = head
        if "transfer-encoding" in head.headers:
            if "content-length" in head.headers:
                raise BadRequest("both Transfer-Encoding and Content-Length")
            if head.headers["transfer-encoding"].lower() != "chunked":
                raise BadRequest("unsupported Transfer-Encoding (only chunked)")
            self._state = "chunk-size"
            return end + 4
        raw = head.headers.get("content-length", "0")
        if not _DIGITS.fullmatch(raw.encode("latin-1")):
            raise BadRequest("invalid Content-Length")
        self._remaining = int(raw)
        if self._remaining > MAX_BODY_BYTES:
            raise BadRequest("request body too large", 413)
        self._state = "length"
        return end + 4

    def _start_chunk(self, size: int) -> None:
        if size > MAX_BODY_BYTES - len(self._body):
            raise BadRequest("request body too large", 413)
        self._remaining = size
        self._state = "chunk-data" if size else "trailers"

    def _finish(self) -> tuple[Head, bytes]:
        assert self._head is not None
        request = (self._head, bytes(self._body))
        self._reset()
        return request


def _line_end(buffer: bytearray, start: int, limit: int, too_long: str) -> int:
    """Where the CRLF ending the line at `start` is; -1 until it has arrived (BadRequest past `limit`)."""
    end = buffer.find(b"\r\n", start, start + limit + 2)
    if end < 0 and len(buffer) - start >= limit + 2:
        raise BadRequest(too_long)
    return end


def _check_partial_chunk_line(buffer: bytearray, start: int) -> None:
    """A chunk-size line that did not match: BadRequest if it is complete (or too long), else more is needed."""
    limit = MAX_CHUNK_LINE_BYTES
    if _line_end(buffer, start, limit, "chunk size line too long") >= 0 or b"\n" in buffer[start : start + limit]:
        raise BadRequest("malformed chunk size")


def _parse_head(raw: bytes) -> Head:
    lines = raw.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not parts[1]:
        raise BadRequest("malformed request line")
    version = parts[2].decode("latin-1")
    if version not in _VERSIONS:
        raise BadRequest("unsupported HTTP version")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, value = _split_header(line)
        if name in headers and name in ("content-length", "transfer-encoding", "host"):
            raise BadRequest(f"repeated {name} header")
        headers[name] = value
    return Head(parts[0].decode("ascii"), parts[1].decode("latin-1"), version, headers)


def _split_header(line: bytes) -> tuple[str, str]:
    name, colon, value = line.partition(b":")
    if not colon or not _TOKEN.fullmatch(name) or b"\n" in value or b"\r" in value:
        raise BadRequest("malformed header line")
    return name.decode("ascii").lower(), value.strip(b" \t").decode("latin-1")
