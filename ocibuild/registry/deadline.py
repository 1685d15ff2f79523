"""Wall-clock deadlines for registry calls: a registry that trickles its answer cannot hold a pull for ever.

Socket timeouts bound each read, not a whole answer: one byte every few seconds keeps a read alive for ever.
A ``Deadline`` is a timer that, when it expires, shuts down the socket its thread is using, so the blocked
read ends and the caller reports the deadline. Connections register with the deadlines active in their
thread each time they send a request (``install_watched_pools`` puts that hook into a urllib3 pool manager).
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
from dataclasses import dataclass

import requests
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection

from ocibuild.errors import BuildError, UserInputError

_active = threading.local()


@dataclass(frozen=True)
class Limits:
    """How long a registry may take: ``deadline`` seconds for any call (connect, headers and a small body), plus
    the time its bytes take at ``floor_rate`` bytes/s for a blob download or upload."""

    deadline: float = 120.0
    floor_rate: float = 256 * 1024

    @staticmethod
    def from_env() -> Limits:
        """Defaults, or ``OCIBUILD_REGISTRY_DEADLINE`` seconds (for slow links, and tests)."""
        value = os.environ.get("OCIBUILD_REGISTRY_DEADLINE", "")
        if not value:
            return Limits()
        try:
            seconds = float(value)
        except ValueError:
            seconds = 0.0
        if not (seconds > 0 and math.isfinite(seconds)):
            raise UserInputError(f"OCIBUILD_REGISTRY_DEADLINE={value}: expected a number of seconds above 0")
        return Limits(deadline=seconds)

    def seconds_for(self, size: int) -> float:
        """The deadline of a call moving ``size`` bytes."""
        return self.deadline + size / self.floor_rate


class Deadline:
    """``with Deadline(seconds) as d:`` shuts down the connection in use by this thread once ``seconds`` pass;
    ``d.expired`` then tells the caller why its read failed."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            if self.expired:
                _shutdown(sock)
            else:
                self._sockets.append(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)

    def __enter__(self) -> Deadline:
        stack = getattr(_active, "deadlines", None)
        if stack is None:
            stack = _active.deadlines = []
        stack.append(self)
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        _active.deadlines.remove(self)


def _shutdown(sock: socket.socket) -> None:
    """End both directions of ``sock`` (a blocked read returns at once); TLS sockets are shut at the TCP level."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watched:
    """Registers the connection's socket with this thread's active deadlines: a new socket as soon as it exists
    (before any TLS handshake), a reused keep-alive one on each request."""

    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        _register(sock)
        return sock

    def request(self, *args: object, **kwargs: object) -> None:
        if self.sock is not None:
            _register(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]


def _register(sock: socket.socket) -> None:
    for deadline in getattr(_active, "deadlines", ()):
        deadline.watch(sock)


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def install_watched_pools(manager: PoolManager) -> None:
    """Make ``manager`` create connections that deadlines can cut."""
    manager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


def read_bounded(response: requests.Response, limit: int, what: str) -> None:
    """Read the answer's body into ``response.content``, refusing one larger than ``limit`` bytes: the size it
    declares is checked first, and at most ``limit + 1`` bytes are ever read, whatever it declares."""
    declared = response.headers.get("Content-Length", "")
    has_body = response.request.method != "HEAD"  # a HEAD answer declares the size of what a GET would send
    if has_body and declared.isdigit() and int(declared) > limit:
        response.close()
        raise BuildError(f"{what}: the answer is {int(declared)} bytes, more than the {limit} allowed")
    data = response.raw.read(limit + 1, decode_content=True)
    if len(data) > limit:
        response.close()
        raise BuildError(f"{what}: the answer is larger than the {limit} bytes allowed")
    response._content = data  # what requests' own non-streaming read would have stored
    response.raw.release_conn()
