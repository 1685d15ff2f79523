"""The moment to connect a container's network: its namespaces exist, its process has not started yet.

runc runs ``python -m ocibuild.run.netready SOCKET`` as a ``createRuntime`` hook (the container's state, with its
host pid, on stdin); the unshare fallback's init runs the same hook itself, with pid 0 meaning "the process that
connects" (the socket's peer credentials name it in ocibuild's pid namespace). The hook sends the pid on the unix
socket and waits for ocibuild's answer, so ports and outbound network are ready before the model starts. Standard
library only.
"""

from __future__ import annotations

import json
import socket
import sys

TIMEOUT_S = 60.0


def handshake(path: str, pid: int) -> None:
    """Tell ocibuild (listening on ``path``) which process's network to connect; return once it has."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(TIMEOUT_S)
        sock.connect(path)
        sock.sendall(f"{pid}\n".encode())
        answer = sock.makefile("rb").readline().decode(errors="replace").strip()
    if answer != "ok":
        sys.exit(f"ocibuild: cannot connect the container's network: {answer or 'no answer'}")


def main(argv: list[str]) -> None:
    state = json.loads(sys.stdin.read() or "{}")
    handshake(argv[0], int(state.get("pid") or 0))


if __name__ == "__main__":
    main(sys.argv[1:])
