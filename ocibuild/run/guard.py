"""Clean up after containers whose ocibuild process died without doing it (SIGKILL, OOM kill, crash).

``Guard`` starts ``python -m ocibuild.run.guard`` in a session of its own, with a pipe on its stdin, and sends it
one JSON line per fact (the runc state root and container id, the scratch directory). ``done()`` says the owner
cleaned up itself. At end of input without ``done`` (the owner died) the guard deletes the container, unmounts
the scratch rootfs and removes the scratch directory. ``reap`` does the same, at the start of a run, for the
leftovers of runs whose guard died too: container ids and scratch directories carry their owner (pid and start
time). Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ocibuild.oci.tree import remove_tree

OWNER_FILE = "owner"
NET_DIR_PREFIX = "ocibuild-net-"
"""Temp directories of ``network.Readiness``: ``ocibuild-net-PID-STARTTIME-XXXX``."""
PACKAGE_PARENT = Path(__file__).resolve().parents[2]


def owner_token(pid: int | None = None) -> str:
    """``PID-STARTTIME`` of a process (default: this one): unique even when pids are reused."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}-{_start_time(pid)}"


def is_alive(token: str) -> bool:
    pid, _, start = token.partition("-")
    return pid.isdigit() and _start_time(int(pid)) == start


def _start_time(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone"
    return stat.rsplit(")", 1)[1].split()[19]


class Guard:
    """The owner's end of the pipe to a guard process."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_PARENT), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ocibuild.run.guard"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            cwd="/",
        )

    def tell(self, **facts: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(facts).encode() + b"\n")
        self.process.stdin.flush()

    def done(self) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):
            self.process.stdin.write(b"done\n")
            self.process.stdin.close()
        self.process.wait()


def cleanup(facts: dict[str, Any]) -> None:
    """Delete the container, unmount the scratch rootfs and remove the scratch directory named in ``facts``."""
    if facts.get("runc_id"):
        runc = facts.get("runc") or shutil.which("runc") or "runc"
        subprocess.run(
            [runc, "--root", facts["runc_root"], "delete", "--force", facts["runc_id"]],
            capture_output=True,
            check=False,
        )
    if facts.get("scratch"):
        scratch = Path(facts["scratch"])
        if os.path.ismount(scratch / "rootfs"):
            subprocess.run(["umount", "-l", str(scratch / "rootfs")], capture_output=True, check=False)
        remove_tree(scratch, ignore_errors=True)


def reap(runc_root: Path, scratch_parent: Path) -> None:
    """Delete containers, scratch directories (``run-*``) and network temp directories whose owner is dead."""
    runc = shutil.which("runc")
    if runc is not None and runc_root.is_dir():
        listed = subprocess.run([runc, "--root", str(runc_root), "list", "-q"], capture_output=True, text=True)
        for cid in listed.stdout.split():
            token = cid.removeprefix("ocibuild-").rsplit("-", 1)[0]
            if cid.startswith("ocibuild-") and not is_alive(token):
                cleanup({"runc": runc, "runc_root": str(runc_root), "runc_id": cid})
    with contextlib.suppress(OSError):
        for scratch in scratch_parent.glob("run-*"):
            try:
                owner = (scratch / OWNER_FILE).read_text().strip()
            except OSError:
                owner = ""
            if (owner and not is_alive(owner)) or (not owner and os.path.ismount(scratch / "rootfs")):
                cleanup({"scratch": str(scratch)})
        for net in Path(tempfile.gettempdir()).glob(f"{NET_DIR_PREFIX}*-*-*"):
            if not is_alive("-".join(net.name.removeprefix(NET_DIR_PREFIX).split("-")[:2])):
                remove_tree(net, ignore_errors=True)


def main() -> None:
    facts: dict[str, Any] = {}
    for line in sys.stdin.buffer:
        if line.strip() == b"done":
            return
        with contextlib.suppress(ValueError):
            facts.update(json.loads(line))
    cleanup(facts)


if __name__ == "__main__":
    main()
