"""Start, wait for and stop one container: ``runc run`` with a private state root, or unshare + chroot.

With ``runtime="auto"`` runc is tried first; when it cannot create the container (not installed, no
permission, unsupported host) the same config runs through ``unshare`` and ``chroot_exec``. Stopping sends
SIGTERM, then SIGKILL after a grace period, then ``runc delete --force``; the bundle is always removed.
If ocibuild dies first (SIGKILL), the unshare process dies with it (a parent-death signal) and a guard process
(``guard.py``) deletes the runc container; runc's state lives in one root per user (``runc_root``) under ids
that name their owner, so the next run reaps what a dead one left.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ocibuild import progress
from ocibuild.errors import BuildError, UserInputError
from ocibuild.oci.tree import remove_tree
from ocibuild.run.guard import PACKAGE_PARENT, Guard, owner_token, reap

RUNTIMES = ("auto", "runc", "unshare")
STOP_GRACE_S = 5.0
PROCESS_ERROR = "unable to start container process"  # runc created the container; its process failed (exec, cwd)
PR_SET_PDEATHSIG = 1

Stream = int | IO[Any] | None


def die_with_parent() -> None:
    """In a child before exec: be killed when ocibuild dies (a parent-death signal)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def runc_root() -> Path:
    """The runc state root shared by this user's containers (``/run/ocibuild-runc`` for root)."""
    if os.geteuid() == 0:
        return Path("/run/ocibuild-runc")
    base = os.environ.get("XDG_RUNTIME_DIR")
    return (Path(base) if base and os.path.isdir(base) else Path.home() / ".cache") / "ocibuild-runc"


def reap_dead_runs(scratch_parent: Path) -> None:
    """Delete containers and scratch directories of runs whose ocibuild process died."""
    reap(runc_root(), scratch_parent)


class Container:
    """One container from a runtime ``spec`` whose bundle and state live under ``scratch``."""

    def __init__(
        self,
        spec: dict[str, Any],
        scratch: Path,
        *,
        runtime: str = "auto",
        stdin: Stream = None,
        stdout: Stream = None,
        stderr: Stream = None,
    ) -> None:
        if runtime not in RUNTIMES:
            raise UserInputError(f"runtime {runtime!r}: expected one of {', '.join(RUNTIMES)}")
        self.spec = spec
        self.scratch = Path(scratch)
        self.runtime = runtime
        self.streams = {"stdin": stdin, "stdout": stdout, "stderr": stderr}
        self.id = f"ocibuild-{owner_token()}-{uuid.uuid4().hex[:12]}"
        self.used = ""
        self.runc = shutil.which("runc") or "runc"
        self.state_root = runc_root()
        self.process: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None
        self.guard: Guard | None = None

    def start(self) -> None:
        bundle = self.scratch / "bundle"
        bundle.mkdir(parents=True, exist_ok=True)
        (bundle / "config.json").write_text(json.dumps(self.spec))
        found = shutil.which("runc") is not None
        if self.runtime == "runc" and not found:
            raise BuildError("runc is not installed")
        self.guard = Guard()
        self.guard.tell(scratch=str(self.scratch))
        if self.runtime != "unshare" and found:
            self.state_root.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.guard.tell(runc=self.runc, runc_root=str(self.state_root), runc_id=self.id)
            error = self._start_runc(bundle)
            if error is None:
                return
            if PROCESS_ERROR in error:  # runc has printed it already
                self.returncode = 127
                return
            if self.runtime == "runc":
                raise BuildError(f"runc cannot run the container: {error}")
            progress.active().warn(f"runc cannot run here ({error}); using unshare + chroot")
        self._start_unshare(bundle / "config.json")

    def _start_runc(self, bundle: Path) -> str | None:
        """Start ``runc run``; returns runc's error when it could not create the container."""
        pid_file, log = self.scratch / "container.pid", self.scratch / "runc.log"
        cmd = [self.runc, "--root", str(self.state_root), "--log", str(log), "--log-format", "json"]
        cmd += ["run", "--bundle", str(bundle), "--pid-file", str(pid_file), self.id]
        self.used = "runc"
        self.process = subprocess.Popen(cmd, start_new_session=True, **self.streams)  # type: ignore[call-overload]
        while not pid_file.exists():
            if self.process.poll() is not None:
                if pid_file.exists():
                    return None
                self.process = None
                self._runc_delete()
                return _runc_error(log)
            time.sleep(0.005)
        return None

    def _start_unshare(self, config: Path) -> None:
        unshare = shutil.which("unshare")
        if unshare is None:
            raise BuildError("neither runc nor unshare can run containers on this host")
        cmd = [unshare, "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private", "--uts", "--ipc"]
        if any(ns["type"] == "network" for ns in self.spec["linux"]["namespaces"]):
            cmd.append("--net")
        if os.geteuid() != 0:
            cmd += ["--user", "--map-root-user"]
        cmd += [sys.executable, "-m", "ocibuild.run.chroot_exec", str(config)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_PARENT), env.get("PYTHONPATH")]))
        self.used = "unshare"
        self.process = subprocess.Popen(  # type: ignore[call-overload]
            cmd, start_new_session=True, env=env, preexec_fn=die_with_parent, **self.streams
        )

    def wait(self, timeout: float | None = None) -> int | None:
        """The container's exit code (128+N when killed by signal N), or None when still running."""
        if self.process is None:
            return self.returncode
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self.returncode = 128 - code if code < 0 else code
        return self.returncode

    def send(self, signum: int) -> None:
        """Deliver ``signum`` to the container's init process."""
        if self.process is None or self.process.poll() is not None:
            return
        if self.used == "runc":
            subprocess.run(
                [self.runc, "--root", str(self.state_root), "kill", self.id, str(int(signum))],
                capture_output=True,
                check=False,
            )
        elif signum == signal.SIGKILL:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        else:
            for child in _children(self.process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signum)

    def stop(self, grace: float = STOP_GRACE_S) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; returns the exit code."""
        self.send(signal.SIGTERM)
        if self.wait(grace) is None:
            self.send(signal.SIGKILL)
            if self.wait(grace) is None and self.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.wait()
        return self.returncode

    def close(self) -> None:
        """Stop the container if it runs, delete its runc state and remove the scratch directory."""
        if self.process is not None and self.process.poll() is None:
            self.stop()
        if self.used == "runc":
            self._runc_delete()
        remove_tree(self.scratch / "bundle", ignore_errors=True)  # the runc state root is shared: never removed
        for name in ("container.pid", "runc.log"):
            (self.scratch / name).unlink(missing_ok=True)
        if self.guard is not None:
            self.guard.done()
            self.guard = None

    def _runc_delete(self) -> None:
        if (self.state_root / self.id).exists():
            subprocess.run(
                [self.runc, "--root", str(self.state_root), "delete", "--force", self.id],
                capture_output=True,
                check=False,
            )

    def __enter__(self) -> Container:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _runc_error(log: Path) -> str:
    """The last error runc logged (its JSON log), as one line."""
    message = "runc exited before the container started"
    with contextlib.suppress(OSError):
        for line in log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if record.get("level") in ("error", "fatal"):
                    message = str(record.get("msg", message))
    return message.splitlines()[0] if message else message


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@contextlib.contextmanager
def stop_signals() -> Iterator[list[int]]:
    """While active, SIGINT/SIGTERM are recorded in the yielded list instead of killing this process."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {sig: signal.signal(sig, lambda signum, _frame: received.append(signum)) for sig in (2, 15)}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_foreground(container: Container) -> int:
    """Run ``container`` to completion; SIGINT/SIGTERM stop it cleanly. Returns its exit code."""
    with stop_signals() as received, container:
        return wait_or_stop(container, received)


def wait_or_stop(container: Container, received: list[int], poll_s: float = 0.1) -> int:
    """Wait for a started ``container`` to exit, stopping it once ``stop_signals`` has ``received`` a signal; its
    exit code (128 + the signal when stopping it gave none)."""
    while True:
        code = container.wait(poll_s)
        if code is not None:
            return code
        if received:
            code = container.stop()
            return code if code is not None else 128 + received[0]
