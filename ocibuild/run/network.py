"""Published ports (``-p [IP:]HOST:CONTAINER``) for host-network containers: a small TCP forwarder.

With host networking the container's port is already a host port; when HOST differs from CONTAINER a
thread accepts on HOST and pipes each connection to 127.0.0.1:CONTAINER.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ocibuild.errors import UserInputError


@dataclass(frozen=True)
class Publish:
    host_ip: str
    host_port: int
    container_port: int


def parse_publish(text: str) -> Publish:
    """``-p HOST:CONTAINER``, ``-p IP:HOST:CONTAINER`` or ``-p PORT`` (same on both sides); TCP only."""
    spec, _, proto = text.partition("/")
    if proto not in ("", "tcp"):
        raise UserInputError(f"-p {text}: only TCP ports can be published")
    parts = spec.rsplit(":", 2)
    if len(parts) == 1:
        parts = [parts[0], parts[0]]
    ip = parts[0] if len(parts) == 3 else "0.0.0.0"
    host, container = parts[-2], parts[-1]
    if not (host.isdigit() and container.isdigit() and 0 < int(host) < 65536 and 0 < int(container) < 65536):
        raise UserInputError(f"-p {text}: expected [IP:]HOST_PORT:CONTAINER_PORT")
    return Publish(ip or "0.0.0.0", int(host), int(container))


def _pipe(source: socket.socket, dest: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            dest.sendall(data)
    with contextlib.suppress(OSError):
        dest.shutdown(socket.SHUT_WR)


def _serve(listener: socket.socket, container_port: int) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", container_port), timeout=10)
            upstream.settimeout(None)
        except OSError:
            client.close()
            continue
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


@contextlib.contextmanager
def forwarders(publish: Sequence[Publish]) -> Iterator[None]:
    """Forward every published port whose host and container ports differ, for the duration of the block."""
    listeners: list[socket.socket] = []
    try:
        for item in publish:
            if item.host_port != item.container_port:
                listeners.append(socket.create_server((item.host_ip, item.host_port)))
                threading.Thread(target=_serve, args=(listeners[-1], item.container_port), daemon=True).start()
    except OSError as exc:
        for listener in listeners:
            listener.close()
        raise UserInputError(f"-p: cannot listen: {exc.strerror}") from None
    try:
        yield
    finally:
        for listener in listeners:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() of its thread
            listener.close()
