"""Outbound network for a container in a network namespace of its own: ``slirp4netns`` (user-mode NAT), when
installed. The container gets ``tap0`` (10.0.2.100/24) and DNS at 10.0.2.3; the host's loopback stays out of
reach (``--disable-host-loopback``). Without slirp4netns, or where it cannot open ``/dev/net/tun`` (rootless on a
host where that device is root's only), the container has loopback only and one line says so.

``attach`` returns once the network is up (``network.Readiness`` calls it before the container's process starts).
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import subprocess
import tempfile
from pathlib import Path

from ocibuild import progress
from ocibuild.run.runtime import die_with_parent
from ocibuild.run.spec import BindMount

DNS = "10.0.2.3"
READY_TIMEOUT_S = 10.0


class Outbound:
    """One slirp4netns for one container; ``close`` (or ocibuild's death) ends it."""

    def __init__(self, enabled: bool = True) -> None:
        self.slirp = shutil.which("slirp4netns") if enabled else None
        self.process: subprocess.Popen[bytes] | None = None
        self._exit_w: int | None = None

    def resolv_conf(self, scratch: Path) -> list[BindMount]:
        """The bind mount of an ``/etc/resolv.conf`` naming slirp's DNS (none without slirp4netns)."""
        if self.slirp is None:
            return []
        path = scratch / "resolv.conf"
        path.write_text(f"nameserver {DNS}\n")
        return [BindMount(str(path), "/etc/resolv.conf", True)]

    def attach(self, pid: int) -> None:
        """Connect the network namespace of process ``pid`` (of the container) to the outside; a note on stderr
        if that fails."""
        if self.slirp is None:
            return
        ready_r, ready_w = os.pipe()
        exit_r, self._exit_w = os.pipe()
        cmd = [self.slirp, "--configure", "--mtu=65520", "--disable-host-loopback"]
        if os.geteuid() != 0:
            cmd.append(f"--userns-path=/proc/{pid}/ns/user")
        cmd += [f"--ready-fd={ready_w}", f"--exit-fd={exit_r}", str(pid), "tap0"]
        with tempfile.TemporaryFile() as log:
            try:
                self.process = subprocess.Popen(
                    cmd, pass_fds=(ready_w, exit_r), stdout=log, stderr=log, preexec_fn=die_with_parent
                )
            finally:
                os.close(ready_w)
                os.close(exit_r)
            with open(ready_r, "rb") as ready:
                answered = select.select([ready], [], [], READY_TIMEOUT_S)[0] and ready.read(1)
            if not answered:
                log.seek(0)
                lines = log.read().decode(errors="replace").splitlines()
                reason = next((line for line in lines if line and "failed(" not in line), "no answer")
                progress.active().warn(f"the container has no outbound network (slirp4netns: {reason})")
                self.close()

    def __enter__(self) -> Outbound:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._exit_w is not None:
            os.close(self._exit_w)  # slirp4netns exits when this closes
            self._exit_w = None
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5)
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.process = None
