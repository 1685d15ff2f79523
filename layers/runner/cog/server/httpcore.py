"""A small asyncio HTTP/1.1 server: keep-alive, Content-Length and chunked bodies, streamed responses.

Requests on one connection are handled one at a time, in order. The application is an async callable
``handle(request) -> Response | StreamingResponse``. Clients are bounded: a head must arrive within the header
timeout, a connection that sends nothing (between requests, or mid-body) for the idle timeout is closed, and at
most ``max_connections`` are open at once; a request being handled has no deadline (predictions can be long).
"""

from __future__ import annotations

import asyncio
import http
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from cog.server import log
from cog.server.httpparse import MAX_HEADER_BYTES, BadRequest, RequestParser

LINGER_S = 1.0
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


@dataclass(frozen=True)
class Limits:
    """How long a client may take, and how many may be connected at once."""

    header_timeout: float = 10.0
    idle_timeout: float = 60.0
    max_connections: int = 256


class HttpProtocol(asyncio.Protocol):
    """One client connection."""

    def __init__(self, handle: Handler, connections: set[HttpProtocol], limits: Limits) -> None:
        self._handle = handle
        self._connections = connections
        self._limits = limits
        self._buffer = bytearray()
        self._parser = RequestParser()
        self._transport: asyncio.Transport | None = None
        self._current: Request | None = None
        self._busy = False
        self._closing = False
        self._paused = False
        self._lingering = False
        self._head_since: float | None = None
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._can_write = asyncio.Event()
        self._can_write.set()

    # -- asyncio callbacks -------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        if len(self._connections) >= self._limits.max_connections:
            self._busy = True  # answered at once; nothing it sends is parsed
            self._write_response(Response(503, b'{"error":"too many open connections","status":"failed"}'))
            return
        self._connections.add(self)
        self._schedule()

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        self._closing = True
        self._can_write.set()
        if self._timer is not None:
            self._timer.cancel()
        if self._current is not None:
            for callback in self._current.on_disconnect:
                callback()

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return
        self._buffer += data
        if not self._busy:
            self._next_request()
        elif len(self._buffer) > MAX_HEADER_BYTES and not self._paused and self._transport is not None:
            self._paused = True  # a pipelining client waits until the request in hand is answered
            self._transport.pause_reading()

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

    # -- parsing and deadlines ---------------------------------------------------------------------
    def _next_request(self) -> None:
        try:
            parsed = self._parser.parse(self._buffer)
        except BadRequest as exc:
            self._refuse(exc.status, str(exc))
            return
        if parsed is None:
            self._schedule()
            return
        head, body = parsed
        connection = head.headers.get("connection", "").lower()
        keep_alive = connection != "close" if head.version == "HTTP/1.1" else connection == "keep-alive"
        path = urllib.parse.unquote(head.target.split("?", 1)[0])
        request = Request(head.method, path, head.headers, body)
        self._busy = True
        self._head_since = None
        self._current = request
        asyncio.get_running_loop().create_task(self._serve(request, keep_alive))

    def _refuse(self, status: int, reason: str) -> None:
        self._busy = True  # read nothing more: the framing is lost
        self._write_response(Response(status, reason.encode(), "text/plain; charset=utf-8", close=True))

    def _schedule(self) -> None:
        """Move the deadline for what the connection is waiting for: a head, more body, or the next request."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not self._parser.reading_head:
            self._deadline = now + self._limits.idle_timeout
        elif self._buffer:
            if self._head_since is None:
                self._head_since = now
            self._deadline = self._head_since + self._limits.header_timeout
        else:
            self._deadline = now + self._limits.idle_timeout
        if self._timer is not None and self._timer.when() > self._deadline:
            self._timer.cancel()
            self._timer = None
        if self._timer is None:
            self._timer = loop.call_at(self._deadline, self._expire)

    def _expire(self) -> None:
        self._timer = None
        if self._busy or self._closing:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self._deadline:
            self._timer = loop.call_at(self._deadline, self._expire)
        elif self._buffer or not self._parser.reading_head:
            self._refuse(408, "request not received in time")
        else:
            self.close()

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
            if not keep_alive:
                self.close()
        else:
            keep_alive = keep_alive and not response.close
            self._write_response(response, keep_alive)
        self._current = None
        self._busy = False
        if not keep_alive:
            return
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
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
            self._linger()

    def _linger(self) -> None:
        """Close after the answer, dropping what the client still sends for a moment: it reads the answer, not a
        reset (closing a socket with unread input makes the kernel send RST, which can discard the answer)."""
        assert self._transport is not None
        self._lingering = True
        if self._transport.can_write_eof():
            self._transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_S, self._transport.close)

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


def _log_failure(exc: Exception) -> None:
    log.error("request handler crashed", error=repr(exc))


async def serve(
    handle: Handler, host: str, port: int, limits: Limits | None = None
) -> tuple[asyncio.AbstractServer, set[HttpProtocol]]:
    """Listen on (host, port); returns the server and the live connections (for draining)."""
    connections: set[HttpProtocol] = set()
    chosen = limits or Limits()
    server = await asyncio.get_running_loop().create_server(
        lambda: HttpProtocol(handle, connections, chosen), host, port, reuse_address=True
    )
    return server, connections
