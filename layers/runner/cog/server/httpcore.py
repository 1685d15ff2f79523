"""A small asyncio HTTP/1.1 server: keep-alive, Content-Length and chunked bodies, streamed responses.

Requests on one connection are handled one at a time, in order. The application is an async callable
``handle(request) -> Response | StreamingResponse``.
"""

from __future__ import annotations

import asyncio
import http
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from cog.server import log

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 100 * 1024 * 1024
_REASONS = {status.value: status.phrase for status in http.HTTPStatus}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    on_disconnect: list[Callable[[], None]] = field(default_factory=list)
    """Called if the client goes away before the response is written."""

    def header(self, name: str) -> str:
        return self.headers.get(name, "")


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    close: bool = False


@dataclass
class StreamingResponse:
    """A chunked response whose body is produced by an async iterator (used for SSE)."""

    status: int
    chunks: AsyncIterator[bytes]
    content_type: str
    headers: list[tuple[str, str]] = field(default_factory=list)


Handler = Callable[[Request], Awaitable["Response | StreamingResponse"]]


class BadRequest(Exception):
    pass


class HttpProtocol(asyncio.Protocol):
    """One client connection."""

    def __init__(self, handle: Handler, connections: set[HttpProtocol]) -> None:
        self._handle = handle
        self._connections = connections
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._current: Request | None = None
        self._busy = False
        self._closing = False
        self._can_write = asyncio.Event()
        self._can_write.set()

    # -- asyncio callbacks -------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        self._closing = True
        self._can_write.set()
        if self._current is not None:
            for callback in self._current.on_disconnect:
                callback()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._busy:
            self._next_request()

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    @property
    def idle(self) -> bool:
        return not self._busy

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    # -- parsing -----------------------------------------------------------------------------------
    def _next_request(self) -> None:
        try:
            parsed = self._parse()
        except BadRequest as exc:
            self._write_response(Response(400, str(exc).encode(), "text/plain; charset=utf-8", close=True))
            return
        if parsed is None:
            return
        request, keep_alive = parsed
        self._busy = True
        self._current = request
        asyncio.get_running_loop().create_task(self._serve(request, keep_alive))

    def _parse(self) -> tuple[Request, bool] | None:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEADER_BYTES:
                raise BadRequest("request header too large")
            return None
        lines = self._buffer[:end].decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ")
        except ValueError:
            raise BadRequest("malformed request line") from None
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body_start = end + 4
        if "chunked" in headers.get("transfer-encoding", "").lower():
            decoded = _decode_chunked(self._buffer, body_start)
            if decoded is None:
                return None
            body, consumed = decoded
        else:
            raw_length = headers.get("content-length") or "0"
            if not raw_length.isdigit():
                raise BadRequest("invalid Content-Length")
            length = int(raw_length)
            if length > MAX_BODY_BYTES:
                raise BadRequest("request body too large")
            if len(self._buffer) < body_start + length:
                return None
            body, consumed = bytes(self._buffer[body_start : body_start + length]), body_start + length
        del self._buffer[:consumed]
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        path = urllib.parse.unquote(target.split("?", 1)[0])
        return Request(method, path, headers, body), keep_alive

    # -- responding --------------------------------------------------------------------------------
    async def _serve(self, request: Request, keep_alive: bool) -> None:
        try:
            response = await self._handle(request)
        except Exception as exc:
            _log_failure(exc)
            response = Response(500, b'{"error":"internal server error"}', close=True)
        if self._closing:
            return
        if isinstance(response, StreamingResponse):
            await self._stream(response)
            keep_alive = keep_alive and not self._closing
        else:
            keep_alive = keep_alive and not response.close
            self._write_response(response, keep_alive)
        self._current = None
        self._busy = False
        if not keep_alive:
            self.close()
        elif self._buffer:
            self._next_request()

    def _head(self, status: int, content_type: str, headers: list[tuple[str, str]], extra: str) -> bytes:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}", f"content-type: {content_type}"]
        lines += [f"{name}: {value}" for name, value in headers]
        return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode("latin-1")

    def _write_response(self, response: Response, keep_alive: bool = False) -> None:
        assert self._transport is not None
        extra = f"content-length: {len(response.body)}\r\n"
        if not keep_alive:
            extra += "connection: close\r\n"
        self._transport.write(
            self._head(response.status, response.content_type, response.headers, extra) + response.body
        )
        if not keep_alive:
            self.close()

    async def _stream(self, response: StreamingResponse) -> None:
        assert self._transport is not None
        self._transport.write(
            self._head(response.status, response.content_type, response.headers, "transfer-encoding: chunked\r\n")
        )
        async for chunk in response.chunks:
            if self._closing:
                return
            self._transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await self._can_write.wait()
        if not self._closing:
            self._transport.write(b"0\r\n\r\n")


def _decode_chunked(buffer: bytearray, start: int) -> tuple[bytes, int] | None:
    """Decode a chunked body starting at ``start``; ``None`` until it is complete."""
    body = bytearray()
    position = start
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        try:
            size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
        except ValueError:
            raise BadRequest("malformed chunk size") from None
        if size < 0 or len(body) + size > MAX_BODY_BYTES:
            raise BadRequest("request body too large" if size > 0 else "malformed chunk size")
        position = line_end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n", position)
            return (bytes(body), trailer_end + 2) if trailer_end >= 0 else None
        if len(buffer) < position + size + 2:
            return None
        body += buffer[position : position + size]
        if len(body) > MAX_BODY_BYTES:
            raise BadRequest("request body too large")
        position += size + 2


def _log_failure(exc: Exception) -> None:
    log.error("request handler crashed", error=repr(exc))


async def serve(handle: Handler, host: str, port: int) -> tuple[asyncio.AbstractServer, set[HttpProtocol]]:
    """Listen on (host, port); returns the server and the live connections (for draining)."""
    connections: set[HttpProtocol] = set()
    server = await asyncio.get_running_loop().create_server(
        lambda: HttpProtocol(handle, connections), host, port, reuse_address=True
    )
    return server, connections
