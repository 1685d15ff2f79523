"""A loopback TCP proxy that counts the bytes a client downloads: how much of a registry a pull really fetched.

    with CountingProxy("127.0.0.1:5000") as proxy:  # pull from proxy.host
        ...
    proxy.downloaded  # bytes sent from upstream to clients (headers and bodies, every connection)

Plain TCP, so HTTP keep-alive, range requests and multipart answers all count as they pass.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading

BLOCK = 1 << 16


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: CountingProxy


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.server.proxy._serve(self.request)  # type: ignore[attr-defined]


class CountingProxy:
    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._lock = threading.Lock()
        self.downloaded = 0
        self.uploaded = 0
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def reset(self) -> None:
        with self._lock:
            self.downloaded = self.uploaded = 0

    def start(self) -> CountingProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> CountingProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _count(self, down: int, up: int) -> None:
        with self._lock:
            self.downloaded += down
            self.uploaded += up

    def _serve(self, client: socket.socket) -> None:
        with contextlib.closing(socket.create_connection(self._upstream)) as upstream:
            pump = threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True)
            pump.start()
            self._pipe(upstream, client, True)
            pump.join(timeout=5)

    def _pipe(self, source: socket.socket, dest: socket.socket, downstream: bool) -> None:
        try:
            while True:
                data = source.recv(BLOCK)
                if not data:
                    break
                dest.sendall(data)
                self._count(len(data), 0) if downstream else self._count(0, len(data))
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dest.shutdown(socket.SHUT_WR)
