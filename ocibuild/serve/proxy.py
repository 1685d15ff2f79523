"""The playground's HTTP front: the page and its static files, and the model's API forwarded on the same origin.

Standard library only. One ``ThreadingHTTPServer`` listens where ``ocibuild serve`` was told (127.0.0.1 unless an
address is given) and forwards to one fixed upstream, the model's runner on ``127.0.0.1:UPSTREAM``; it is not a
general proxy: only the Cog API's paths are forwarded (``/openapi.json``, ``/health-check``, ``/predictions``,
``/predictions/{id}``, ``/predictions/{id}/cancel``, the same for ``/trainings``, ``/shutdown`` and ``GET /``),
absolute-form targets and ``CONNECT`` are refused. On a loopback address requests must name a loopback ``Host``
(so a DNS-rebinding page cannot reach it) and a cross-origin ``Origin`` is refused.

Responses are streamed through as they arrive (Server-Sent Events included): bodies without a length are
re-chunked to the client chunk by chunk. A client that goes away while its request is in flight closes the
upstream connection, so the runner cancels a sync prediction as it does for a direct client.
"""

from __future__ import annotations

import contextlib
import html
import http.client
import http.server
import ipaddress
import json
import re
import select
import socket
import threading
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

MAX_BODY = 100 * 1024 * 1024 + 65536  # the runner's own limit (100 MiB) plus room for the envelope
UPSTREAM_CONNECT_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 120.0
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
}
API_PATH = re.compile(
    r"^/(?:openapi\.json|health-check|shutdown|(?:predictions|trainings)(?:/[A-Za-z0-9._~-]{1,200}(?:/cancel)?)?)$"
)
STATIC = {
    "/playground/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/playground/style.css": ("style.css", "text/css; charset=utf-8"),
    "/playground/favicon.svg": ("favicon.svg", "image/svg+xml"),
}
PAGE_PATHS = ("/playground", "/playground/")
LOOPBACK_NAMES = {"localhost", "localhost.", "127.0.0.1", "::1"}
SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
]
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data: blob: http: https:; media-src 'self' data: blob: http: https:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


def static_file(name: str) -> bytes:
    """One of the playground's files (package data beside this module)."""
    return resources.files("ocibuild.serve").joinpath("static", name).read_bytes()


def render_page(title: str) -> bytes:
    text = static_file("index.html").decode()
    return text.replace("{{title}}", html.escape(title, quote=True)).encode()


def _host_name(value: str) -> str:
    """The host part of a ``Host`` header value (brackets of an IPv6 literal removed)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Proxy:
    """The server: ``serve_forever`` in a thread (``start``), ``close`` to stop."""

    def __init__(
        self,
        upstream_port: int,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        playground: bool = True,
        title: str = "Cog model",
        upstream_host: str = "127.0.0.1",
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.playground = playground
        self.page = render_page(title) if playground else b""
        self.loopback_only = _is_loopback(host)
        handler = _make_handler(self)
        server_class = _V6Server if ":" in host else http.server.ThreadingHTTPServer
        self.server = server_class((host, port), handler)
        self.thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        host = self.server.server_address[0]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}/"

    def start(self) -> Proxy:
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        self.thread.start()
        return self

    def close(self) -> None:
        if self.thread is not None:
            self.server.shutdown()
            self.thread.join(5)
            self.thread = None
        self.server.server_close()

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class _V6Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


class _ClientGone(Exception):
    pass


def _make_handler(proxy: Proxy) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = IDLE_TIMEOUT_S  # a socket timeout: idle keep-alive connections and stalled clients are dropped
        server_version = "ocibuild-serve"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            pass

        # -- entry points -------------------------------------------------------------------------------
        def do_GET(self) -> None:
            self._handle()

        def do_HEAD(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def do_PUT(self) -> None:
            self._handle()

        def do_DELETE(self) -> None:
            self._handle()

        def do_OPTIONS(self) -> None:
            self._handle()

        def do_PATCH(self) -> None:
            self._handle()

        def do_CONNECT(self) -> None:
            self._error(405, "ocibuild serve is not a general proxy")

        # -- routing ------------------------------------------------------------------------------------
        def _handle(self) -> None:
            if not self.path.startswith("/"):
                self._error(400, "ocibuild serve is not a general proxy: absolute request targets are refused")
                return
            refusal = self._refusal()
            if refusal is not None:
                self._error(403, refusal)
                return
            path = urlsplit(self.path).path
            if proxy.playground and self.command in ("GET", "HEAD"):
                if path in PAGE_PATHS or (path == "/" and self._wants_html()):
                    self._send(200, proxy.page, "text/html; charset=utf-8", [("Content-Security-Policy", PAGE_CSP)])
                    return
                if path in STATIC:
                    name, kind = STATIC[path]
                    self._send(200, static_file(name), kind, [("Cache-Control", "no-cache")])
                    return
            if path == "/" or API_PATH.match(path):
                self._forward()
                return
            self._error(404, f"not found: {path}")

        def _refusal(self) -> str | None:
            host = self.headers.get("Host")
            if proxy.loopback_only and host is not None and not _is_loopback(_host_name(host)):
                return f"Host {host!r} is not a loopback name"
            origin = self.headers.get("Origin")
            if origin and (host is None or urlsplit(origin).netloc.lower() != host.lower()):
                return f"cross-origin request from {origin} refused"  # "null" (sandboxed frames, files) included
            return None

        def _wants_html(self) -> bool:
            return "text/html" in (self.headers.get("Accept") or "")

        # -- answers of our own -------------------------------------------------------------------------
        def _send(self, status: int, body: bytes, kind: str, extra: list[tuple[str, str]] = ()) -> None:  # type: ignore[assignment]
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            for name, value in [*SECURITY_HEADERS, *extra]:
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, status: int, message: str) -> None:
            self._drain_body()
            self.close_connection = True
            body = ('{"error":' + json.dumps(message) + "}").encode()
            self._send(status, body, "application/json", [("Connection", "close")])

        def _drain_body(self) -> None:
            with contextlib.suppress(Exception):
                length = int(self.headers.get("Content-Length") or 0)
                if 0 < length <= 1 << 20:  # a small refused body is read so the client sees the answer
                    self.rfile.read(length)

        # -- forwarding ---------------------------------------------------------------------------------
        def _read_body(self) -> bytes | None:
            """The request body (chunked bodies are de-chunked); None after answering an error."""
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                parts, total = [], 0
                while True:
                    line = self.rfile.readline(1024)
                    try:
                        size = int(line.split(b";")[0].strip(), 16)
                    except ValueError:
                        self._error(400, "malformed chunked body")
                        return None
                    if size == 0:
                        while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(parts)
                    total += size
                    if total > MAX_BODY:
                        self._error(413, "request body too large")
                        return None
                    parts.append(self.rfile.read(size))
                    self.rfile.readline(8)
            text = self.headers.get("Content-Length") or "0"
            if not text.isdigit():
                self._error(400, "malformed Content-Length")
                return None
            if int(text) > MAX_BODY:
                self._error(413, "request body too large")
                return None
            return self.rfile.read(int(text))

        def _forward(self) -> None:
            body = self._read_body()
            if body is None:
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Host"] = f"{proxy.upstream[0]}:{proxy.upstream[1]}"
            forwarded_for = self.client_address[0]
            headers["X-Forwarded-For"] = forwarded_for
            if body or self.command in ("POST", "PUT", "PATCH"):
                headers["Content-Length"] = str(len(body))
            upstream = http.client.HTTPConnection(*proxy.upstream, timeout=UPSTREAM_CONNECT_TIMEOUT_S)
            try:
                try:
                    upstream.connect()
                    assert upstream.sock is not None
                    upstream.sock.settimeout(None)
                    upstream.request(self.command, self.path, body=body or None, headers=headers)
                    response = self._await_response(upstream)
                except (OSError, http.client.HTTPException) as exc:
                    self._error(502, f"the model's server is not answering yet ({exc or type(exc).__name__})")
                    return
                self._relay(response)
            except _ClientGone:
                self.close_connection = True
            finally:
                upstream.close()

        def _await_response(self, upstream: http.client.HTTPConnection) -> http.client.HTTPResponse:
            """``getresponse`` while watching the client: if it hangs up first, close the upstream connection
            (the runner cancels a sync prediction whose client went away) and raise ``_ClientGone``."""
            done = threading.Event()
            gone: list[bool] = []
            upstream_sock = upstream.sock  # http.client drops its reference once a response takes the socket

            def watch() -> None:
                client = self.connection
                while not done.is_set():
                    try:
                        readable = select.select([client], [], [], 0.2)[0]
                        if readable and not client.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT):
                            gone.append(True)
                            with contextlib.suppress(OSError, AttributeError):
                                upstream_sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
                            return
                        if readable:  # a pipelined next request: not a hang-up
                            done.wait(0.2)
                    except (OSError, ValueError):
                        return

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            try:
                response = upstream.getresponse()
            except (OSError, http.client.HTTPException):
                if gone:
                    raise _ClientGone() from None
                raise
            finally:
                done.set()
            watcher.join()
            if gone:
                raise _ClientGone()
            return response

        def _relay(self, response: http.client.HTTPResponse) -> None:
            self.send_response_only(response.status, response.reason)
            length = response.getheader("Content-Length")
            for name, value in response.getheaders():
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            for name, value in SECURITY_HEADERS:
                self.send_header(name, value)
            no_body = self.command == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200
            chunked = not no_body and length is None
            if length is not None:
                self.send_header("Content-Length", length)
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("X-Accel-Buffering", "no")
            if response.will_close or (response.getheader("Connection") or "").lower() == "close":
                self.close_connection = True
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if no_body:
                return
            try:
                while True:
                    data = response.read1(65536) if chunked else response.read(65536)
                    if not data:
                        break
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
                    self.wfile.flush()
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
            except (OSError, http.client.HTTPException):
                self.close_connection = True  # one side went away mid-body: both connections are closed

    return Handler
