"""Helpers for the end-to-end acceptance suite: ocibuild as a subprocess, registry, umoci+runc, podman, PNGs."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.helpers import REPO, require_tool

EXAMPLES = REPO / "examples"
PYTHON = REPO / ".venv" / "bin" / "python"
FIND_LINKS = Path("/opt/wheels")
PODMAN_FLAGS = ["--runtime", "runc", "--cgroup-manager=cgroupfs"]
PODMAN_RUN_FLAGS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


def python() -> str:
    """The interpreter that runs ``-m ocibuild``: the project's venv, else the one running pytest."""
    return str(PYTHON) if PYTHON.exists() else sys.executable


def load_registry_script() -> ModuleType:
    """``scripts/registry.py`` (the registry engineer's helper), imported by path."""
    spec = importlib.util.spec_from_file_location("ocibuild_scripts_registry", REPO / "scripts" / "registry.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while the class is created
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Result:
    cmd: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def ocibuild(
    *args: str | Path, env: dict[str, str], check: bool = True, timeout: float = 900, stdin: str | None = None
) -> Result:
    """``python -m ocibuild ARGS`` in a subprocess; fails the test with its output when ``check`` and it fails."""
    cmd = [python(), "-m", "ocibuild", *map(str, args)]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout, input=stdin)
    result = Result(cmd, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}:\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    return result


def tool(*cmd: str | Path, timeout: float = 300, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run an external tool (resolved with ``require_tool``), failing the test with its output on error."""
    argv = [require_tool(str(cmd[0])), *map(str, cmd[1:])]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(argv)} exited {proc.returncode}:\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    return proc


# --- HTTP against a running Cog server -------------------------------------------------------------------------


def http_json(method: str, url: str, body: Any = None, timeout: float = 120) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        payload = exc.read()
        try:
            return exc.code, json.loads(payload)
        except ValueError:
            return exc.code, payload.decode(errors="replace")


def wait_ready(port: int, alive: Any, timeout: float = 180, log: Path | None = None) -> dict[str, Any]:
    """Poll ``/health-check`` until READY; ``alive()`` returns False once the container has exited."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        if not alive():
            pytest.fail(f"the container exited before READY (last health {last}):\n{_tail(log)}")
        with contextlib.suppress(OSError, ValueError):
            _, last = http_json("GET", f"http://127.0.0.1:{port}/health-check", timeout=2)
            if isinstance(last, dict):
                if last.get("status") == "READY":
                    return last
                if last.get("status") in ("SETUP_FAILED", "DEFUNCT"):
                    pytest.fail(f"model setup failed: {last}\n{_tail(log)}")
        time.sleep(0.1)
    pytest.fail(f"not READY within {timeout}s (last health {last}):\n{_tail(log)}")


def predict_http(port: int, inputs: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    status, body = http_json("POST", f"http://127.0.0.1:{port}/predictions", {"input": inputs}, timeout=timeout)
    assert status == 200, f"POST /predictions answered {status}: {body}"
    assert isinstance(body, dict) and body.get("status") == "succeeded", body
    return body


def _tail(log: Path | None, lines: int = 40) -> str:
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


# --- runc on an umoci bundle -------------------------------------------------------------------------------------


@contextlib.contextmanager
def runc_container(bundle: Path, container_id: str, env: Sequence[str] = ()) -> Iterator[subprocess.Popen[bytes]]:
    """Start an umoci bundle under ``runc run`` with host networking and extra ``env``; always deleted after."""
    runc = require_tool("runc")
    config_path = bundle / "config.json"
    config = json.loads(config_path.read_text())
    process = config["process"]
    process["terminal"] = False
    names = {item.split("=", 1)[0] for item in env}
    process["env"] = [item for item in process.get("env", []) if item.split("=", 1)[0] not in names] + list(env)
    process["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    linux = config.setdefault("linux", {})
    linux["namespaces"] = [ns for ns in linux.get("namespaces", []) if ns.get("type") != "network"]
    # host network: the container needs the host's resolv.conf/hosts only for outbound names; none are used here
    config_path.write_text(json.dumps(config, indent=2))
    log = bundle.parent / f"{container_id}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [runc, "run", container_id], cwd=bundle, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield proc
    finally:
        subprocess.run([runc, "kill", container_id, "KILL"], capture_output=True)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        subprocess.run([runc, "delete", "--force", container_id], capture_output=True)


# --- podman ------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def podman_container(ref: str, name: str, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``podman run`` a pushed image in the background (host network, ``PORT``); removed afterwards.

    Storage lives in a private temporary ``--root``/``--runroot`` (podman wants a runroot under 50 characters),
    so the test never touches the host's podman store; it is deleted afterwards.
    """
    podman = require_tool("podman")
    root = Path(tempfile.mkdtemp(prefix="e2e-podman-", dir="/tmp"))
    base = [podman, *PODMAN_FLAGS, "--root", str(root / "storage"), "--runroot", str(root / "run")]
    cmd = [*base, "run", "--rm", "--name", name, *PODMAN_RUN_FLAGS, "--tls-verify=false", "--network", "host"]
    cmd += ["-e", f"PORT={port}", ref]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        subprocess.run([*base, "rm", "--force", "--time", "5", name], capture_output=True, timeout=60)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        # let podman remove the pulled image (and unmount its layers) before the folder goes
        subprocess.run([*base, "rmi", "--all", "--force"], capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


# --- PNG without Pillow -------------------------------------------------------------------------------------------


def png_encode(width: int, height: int, pixels: Sequence[tuple[int, int, int]]) -> bytes:
    """An 8-bit RGB, non-interlaced PNG of ``pixels`` (row-major)."""
    rows = b"".join(
        b"\x00" + bytes(channel for pixel in pixels[y * width : (y + 1) * width] for channel in pixel)
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def png_decode(data: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """Decode an 8-bit RGB/RGBA non-interlaced PNG (all five filter types) to ``(width, height, pixels)``."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    pixels: list[tuple[int, ...]] = []
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            upleft = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - upleft
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - upleft)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else upleft)) & 0xFF
        pixels += [tuple(line[x * channels : (x + 1) * channels]) for x in range(width)]
        previous = line
    return width, height, pixels


def sample_pixels(width: int = 6, height: int = 4) -> list[tuple[int, int, int]]:
    """A small deterministic RGB picture."""
    return [((x * 40) % 256, (y * 60) % 256, (x * y * 17 + 5) % 256) for y in range(height) for x in range(width)]


def clean_env(home: Path) -> dict[str, str]:
    """The environment for our subprocesses: no ambient registry credentials, no colour."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "OCIBUILD_REGISTRY_"))}
    env["DOCKER_CONFIG"] = str(home / "docker-config")
    env["REGISTRY_AUTH_FILE"] = str(home / "containers-auth.json")
    env["NO_COLOR"] = "1"
    env.pop("OCIBUILD_CACHE", None)
    return env


def which(name: str) -> str | None:
    return shutil.which(name) or next((str(p) for p in (Path("/usr/sbin") / name,) if p.exists()), None)


def sse_events(port: int, inputs: dict[str, Any], timeout: float = 60) -> list[tuple[str, Any]]:
    """POST a prediction with ``Accept: text/event-stream`` and return its ``(event, data)`` pairs until completed."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/predictions",
        data=json.dumps({"input": inputs}).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Accept": "text/event-stream"},
    )
    events: list[tuple[str, Any]] = []
    with urllib.request.urlopen(request, timeout=timeout) as response:
        assert response.headers.get("content-type", "").startswith("text/event-stream")
        event = None
        for raw in response:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event:
                events.append((event, json.loads(line[6:])))
                if event == "completed":
                    break
    return events


def layout_config(layout: Path) -> dict[str, Any]:
    """The image config of a single-image OCI layout, read by hand (index.json -> manifest -> config)."""

    def blob(digest: str) -> Any:
        algorithm, hexdigest = digest.split(":", 1)
        return json.loads((layout / "blobs" / algorithm / hexdigest).read_bytes())

    entries = json.loads((layout / "index.json").read_text())["manifests"]
    (descriptor,) = [e for e in entries if not e.get("artifactType")]  # SBOM and provenance sit beside it
    return blob(blob(descriptor["digest"])["config"]["digest"])
