"""The port forwarder of one container, run inside its network namespace (``nsenter``): it accepts on listening
sockets that ocibuild bound in the host's namespace and inherited to it, and connects each client to
``127.0.0.1:PORT`` inside the container. Standard library only.

Run as ``python -m ocibuild.run.forward PARENT_PID FD:PORT...``; it exits when PARENT_PID is no longer its
parent (ocibuild sets a parent-death signal too, so it never outlives the run).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time

CONNECT_TIMEOUT_S = 10.0


def _pipe(source: socket.socket, dest: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            dest.sendall(data)
    with contextlib.suppress(OSError):
        dest.shutdown(socket.SHUT_WR)


def _serve(listener: socket.socket, port: int) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", port), timeout=CONNECT_TIMEOUT_S)
            upstream.settimeout(None)
        except OSError:
            client.close()  # nothing listens in the container (yet): the client sees the connection closed
            continue
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: ocibuild stops us
    parent = int(argv[0])
    for pair in argv[1:]:
        fd, _, port = pair.partition(":")
        listener = socket.socket(fileno=int(fd))
        threading.Thread(target=_serve, args=(listener, int(port)), daemon=True).start()
    while os.getppid() == parent:
        time.sleep(0.5)


if __name__ == "__main__":
    main(sys.argv[1:])
