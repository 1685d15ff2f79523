"""The network of a container in its own namespace: published ports (``-p [IP:]HOST:CONTAINER``), connected
at the right moment.

The host side listens (on 127.0.0.1 unless an address is given) before the container starts, so a port that
is taken is a one-line error and nothing runs. ``Readiness`` adds a hook (``netready.py``) that stops the
container between creating its namespaces and starting its process; then ``ocibuild.run.forward`` is started
inside the container's network namespace with those listening sockets (it connects each client to
``127.0.0.1:CONTAINER`` there), and ``outbound.py`` connects it to the outside. The same works as root and
rootless (``nsenter`` joins the container's user namespace first), for runc and for the unshare fallback.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocibuild.errors import BuildError, UserInputError
from ocibuild.oci.tree import remove_tree
from ocibuild.run.guard import NET_DIR_PREFIX, owner_token
from ocibuild.run.runtime import PACKAGE_PARENT, die_with_parent


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
    ip = parts[0].strip("[]") if len(parts) == 3 else ""
    host, container = parts[-2], parts[-1]
    if not (host.isdigit() and container.isdigit() and 0 < int(host) < 65536 and 0 < int(container) < 65536):
        raise UserInputError(f"-p {text}: expected [IP:]HOST_PORT:CONTAINER_PORT")
    return Publish(ip or "127.0.0.1", int(host), int(container))


class Publisher:
    """Listening sockets for ``ports`` (a host port 0 picks a free one) and, once attached, their forwarder."""

    def __init__(self, ports: Sequence[Publish]) -> None:
        self.ports = list(ports)
        self.listeners: list[socket.socket] = []
        self.forwarder: subprocess.Popen[bytes] | None = None
        try:
            for item in self.ports:
                family = socket.AF_INET6 if ":" in item.host_ip else socket.AF_INET
                self.listeners.append(socket.create_server((item.host_ip, item.host_port), family=family))
        except OSError as exc:
            self.close()
            reason = os.strerror(exc.errno or 0)
            raise UserInputError(
                f"-p {item.host_ip}:{item.host_port}:{item.container_port}: cannot listen: {reason}"
            ) from None

    def host_port(self, index: int = 0) -> int:
        return self.listeners[index].getsockname()[1]

    def attach(self, pid: int) -> None:
        """Start forwarding into the network namespace of process ``pid`` (of the container)."""
        if not self.listeners:
            return
        nsenter = shutil.which("nsenter")
        if nsenter is None:
            raise BuildError("-p needs nsenter (util-linux) to reach the container's network")
        cmd = [nsenter, f"--target={pid}", "--net"]
        if os.geteuid() != 0:
            cmd += ["--user", "--preserve-credentials"]
        cmd += [sys.executable, "-m", "ocibuild.run.forward", str(os.getpid())]
        cmd += [f"{s.fileno()}:{p.container_port}" for s, p in zip(self.listeners, self.ports, strict=True)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_PARENT), env.get("PYTHONPATH")]))
        self.forwarder = subprocess.Popen(
            cmd,
            pass_fds=[s.fileno() for s in self.listeners],
            env=env,
            cwd=Path("/"),
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )

    def close(self) -> None:
        if self.forwarder is not None:
            self.forwarder.kill()
            self.forwarder.wait()
            self.forwarder = None
        for listener in self.listeners:
            listener.close()
        self.listeners = []

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Readiness:
    """A unix socket that the container's ``netready`` hook reports to; each ``connect(pid)`` runs then, before
    the container's process starts. The socket lives in a short temp directory (socket paths are limited to 108
    bytes; a store path may be longer)."""

    def __init__(self, *connect: Callable[[int], None]) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=f"{NET_DIR_PREFIX}{owner_token()}-")) / "ready.sock"
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(self.path))
        self.server.listen(1)
        self.connect = connect
        threading.Thread(target=self._serve, daemon=True).start()

    def hook(self) -> dict[str, Any]:
        """The ``createRuntime`` hook for the runtime config."""
        env = [f"PYTHONPATH={PACKAGE_PARENT}", f"PATH={os.environ.get('PATH', '/usr/bin:/bin')}"]
        args = [sys.executable, "-m", "ocibuild.run.netready", str(self.path)]
        return {"path": sys.executable, "args": args, "env": env}

    def _serve(self) -> None:
        """Answer each hook (runc, then the unshare fallback if runc gave up) until closed; helpers started here
        die with this thread (their parent-death signal), so it lives as long as the run."""
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            with client:
                try:
                    pid = int(client.makefile("rb").readline() or 0)
                    if pid == 0:  # the unshare fallback: the process that connected, in our pid namespace
                        creds = client.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
                        pid = struct.unpack("3i", creds)[0]
                    for step in self.connect:
                        step(pid)
                    answer = "ok"
                except Exception as exc:  # the hook is told, and the container does not start
                    answer = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                client.sendall(f"{answer}\n".encode())

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()
        remove_tree(self.path.parent, ignore_errors=True)

    def __enter__(self) -> Readiness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
