"""A fault-injecting HTTP/1.1 reverse proxy on loopback, for testing registry clients against bad networks.

Each request is either forwarded, answered with 500 or 429, or its connection is dropped: before forwarding,
part-way through the request body, or after the upstream answered. Choices come from ``random.Random(seed)``.
One request per connection (``Connection: close``), bodies streamed, never buffered.

    with FaultProxy("127.0.0.1:5000", seed=7, drop=0.1, error=0.1) as proxy: ... proxy.host ...
    python scripts/fault_proxy.py 127.0.0.1:5000 --seed 7 --drop 0.1 --error 0.1
"""

from __future__ import annotations

import argparse
import contextlib
import random
import socket
import socketserver
import sys
import threading
from collections import Counter

BLOCK = 1 << 16


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: FaultProxy


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.server.proxy._serve(self.request)  # type: ignore[attr-defined]


class FaultProxy:
    """Proxy to ``upstream`` (``host:port``). ``drop``/``error`` are per-request probabilities; after
    ``down_after`` requests every connection is closed at once (a registry that went away)."""

    def __init__(
        self,
        upstream: str,
        *,
        seed: int = 0,
        drop: float = 0.1,
        error: float = 0.1,
        down_after: int | None = None,
        port: int = 0,
    ) -> None:
        self.upstream = upstream
        self.drop = drop
        self.error = error
        self.down_after = down_after
        self.stats: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.proxy = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _choose(self) -> tuple[str, float]:
        with self._lock:
            self.stats["requests"] += 1
            if self.down_after is not None and self.stats["requests"] > self.down_after:
                fault = "down"
            else:
                roll = self._rng.random()
                if roll < self.drop:
                    fault = self._rng.choice(["drop-before", "drop-mid", "drop-after"])
                elif roll < self.drop + self.error:
                    fault = self._rng.choice(["500", "429", "503"])
                else:
                    fault = "pass"
            self.stats[fault] += 1
            return fault, self._rng.random()

    def _serve(self, client: socket.socket) -> None:
        reader = client.makefile("rb")
        try:
            head = read_head(reader)
            if head is None:
                return
            fault, fraction = self._choose()
            if fault in ("down", "drop-before"):
                return
            if fault in ("500", "429", "503"):
                _answer(client, int(fault))
                return
            self._forward(client, reader, head, fault, fraction)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                reader.close()
                client.shutdown(socket.SHUT_RDWR)
            client.close()

    def _forward(self, client: socket.socket, reader, head: bytes, fault: str, fraction: float) -> None:
        lines = head.split(b"\r\n")
        kept = [
            line for line in lines[1:] if line and not line.lower().startswith((b"connection:", b"proxy-connection:"))
        ]
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in kept)}
        host, port = self.upstream.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=60) as up:
            up.sendall(b"\r\n".join([lines[0], *kept, b"Connection: close", b"", b""]))
            if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
                _copy_chunked(reader, up)
            else:
                length = int(headers.get(b"content-length", b"0"))
                limit = int(length * fraction) if fault == "drop-mid" else length
                if fault == "drop-mid" and not length:
                    fault = "drop-after"
                _copy(reader, up, limit)
                if limit < length:
                    return
            if fault == "drop-after":
                up.recv(BLOCK)  # let the upstream act on the request, then lose its answer
                return
            while data := up.recv(BLOCK):
                client.sendall(data)


def read_head(reader) -> bytes | None:
    lines = []
    while True:
        line = reader.readline(65536)
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            return b"".join(lines).rstrip(b"\r\n")
        lines.append(line)


def _copy(reader, out: socket.socket, length: int) -> None:
    while length > 0:
        data = reader.read(min(BLOCK, length))
        if not data:
            raise OSError("client closed mid-body")
        out.sendall(data)
        length -= len(data)


def _copy_chunked(reader, out: socket.socket) -> None:
    while True:
        size_line = reader.readline(1024)
        out.sendall(size_line)
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while (trailer := reader.readline(65536)) not in (b"\r\n", b"\n", b""):
                out.sendall(trailer)
            out.sendall(b"\r\n")
            return
        _copy(reader, out, size + 2)


def _answer(client: socket.socket, status: int) -> None:
    reason = {500: "Internal Server Error", 429: "Too Many Requests", 503: "Service Unavailable"}[status]
    body = b'{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}'
    client.sendall(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"Retry-After: 0\r\nConnection: close\r\n\r\n".encode()
        + body
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("upstream", help="HOST:PORT to forward to")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--drop", type=float, default=0.1)
    parser.add_argument("--error", type=float, default=0.1)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    proxy = FaultProxy(args.upstream, seed=args.seed, drop=args.drop, error=args.error, port=args.port).start()
    print(proxy.host, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        proxy.stop()
        print(dict(proxy.stats), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
