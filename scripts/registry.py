"""Start Debian's ``docker-registry`` (distribution 2.8) on a free loopback port, for tests and benchmarks.

As a module: ``with start_registry(tmpdir, auth=("user", "pw")) as reg: ... reg.host ...``.
From the shell: ``registry.py run DIR [--auth USER:PASS]`` (foreground until Ctrl-C),
``registry.py start DIR`` (detached; prints ``HOST PID``), ``registry.py stop PID``.

Before handing out the registry it checks that *our* process is alive and owns the listening socket, so a test
never talks to somebody else's registry on a shared port.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

BINARY = "docker-registry"


@dataclass
class RunningRegistry:
    """A registry we started: ``host`` is ``127.0.0.1:PORT``; ``stop()`` ends it by PID."""

    host: str
    pid: int
    root: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def port(self) -> int:
        return int(self.host.rsplit(":", 1)[1])

    def stop(self, timeout: float = 10.0) -> None:
        _stop_pid(self.pid, timeout, self.process)

    def __enter__(self) -> RunningRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _htpasswd_line(user: str, password: str) -> str:
    """A bcrypt htpasswd entry, from Python ``bcrypt`` when present, else ``htpasswd -B`` (apache2-utils)."""
    try:
        import bcrypt  # type: ignore[import-not-found]

        return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}"
    except ImportError:
        pass
    if not shutil.which("htpasswd"):
        raise RuntimeError("need Python bcrypt or htpasswd (apt-get install apache2-utils) for an auth registry")
    out = subprocess.run(
        ["htpasswd", "-niB", "-C", "5", user], input=password + "\n", capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def write_config(root: Path, port: int, auth: tuple[str, str] | None) -> Path:
    storage = root / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    lines = [
        "version: 0.1",
        "log: {level: warn, accesslog: {disabled: true}}",
        f"storage: {{filesystem: {{rootdirectory: {storage}}}, delete: {{enabled: true}},"
        " maintenance: {uploadpurging: {enabled: false}}}",
        f"http: {{addr: '127.0.0.1:{port}', secret: {secrets.token_hex(16)},"
        " headers: {X-Content-Type-Options: [nosniff]}}",
    ]
    if auth:
        htpasswd = root / "htpasswd"
        htpasswd.write_text(_htpasswd_line(*auth) + "\n")
        lines.append(f"auth: {{htpasswd: {{realm: ocibuild-test, path: {htpasswd}}}}}")
    config = root / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    return config


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on ``port`` (from /proc/net/tcp{,6})."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as f:
            for line in list(f)[1:]:
                cols = line.split()
                if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(cols[9])
    return inodes


def owns_port(pid: int, port: int) -> bool:
    """True when process ``pid`` holds a socket listening on ``port``."""
    wanted = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                return True
    return False


def _v2_answers(host: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}/v2/", timeout=1) as r:
            return r.status == 200
    except urllib.error.HTTPError as e:
        return e.code == 401  # an auth registry answers 401 to anonymous pings
    except OSError:
        return False


def _stop_pid(pid: int, timeout: float, process: subprocess.Popen | None = None) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None:
            if process.poll() is not None:
                return
        elif not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if process is not None:
        process.wait()


def start_registry(
    tmpdir: Path, auth: tuple[str, str] | None = None, *, timeout: float = 20.0, detach: bool = False
) -> RunningRegistry:
    """Start a registry storing under ``tmpdir``; ``auth=(user, password)`` turns on htpasswd Basic auth."""
    if not shutil.which(BINARY):
        raise RuntimeError(f"{BINARY} not found (apt-get install docker-registry)")
    root = Path(tmpdir)
    root.mkdir(parents=True, exist_ok=True)
    for _ in range(3):  # another process may grab the free port before the registry binds it
        port = free_port()
        config = write_config(root, port, auth)
        log = open(root / "registry.log", "ab")  # noqa: SIM115 - handed to the child
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}  # it reads them as its config
        process = subprocess.Popen(
            [BINARY, "serve", str(config)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=detach,
        )
        log.close()
        registry = RunningRegistry(f"127.0.0.1:{port}", process.pid, root, process)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            if owns_port(process.pid, port) and _v2_answers(registry.host):
                return registry
            time.sleep(0.05)
        registry.stop()
    tail = (root / "registry.log").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"docker-registry did not start; log tail:\n{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("run", "start"):
        p = sub.add_parser(name)
        p.add_argument("dir", type=Path)
        p.add_argument("--auth", help="USER:PASS for htpasswd Basic auth")
    sub.add_parser("stop").add_argument("pid", type=int)
    args = parser.parse_args(argv)
    if args.cmd == "stop":
        _stop_pid(args.pid, 10.0)
        return 0
    auth = tuple(args.auth.split(":", 1)) if args.auth else None
    registry = start_registry(args.dir, auth, detach=args.cmd == "start")  # type: ignore[arg-type]
    print(registry.host, registry.pid, flush=True)
    if args.cmd == "start":
        return 0
    try:
        registry.process.wait()  # type: ignore[union-attr]
    except KeyboardInterrupt:
        registry.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
