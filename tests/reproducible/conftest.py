"""Helpers for the reproducibility, offline, crash-safety and incrementality tests (issue 10)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
# Examples that must exist (a missing one fails, never skips) and the extra build arguments of each example.
REQUIRED_EXAMPLES = ("hello-world",)
EXTRA_ARGS = {"torch-cpu": ["--find-links", "/opt/wheels"]}
# Examples too big for the default suite (GBs of CUDA wheels): built only with OCIBUILD_SLOW=1.
SLOW_EXAMPLES = {"gpu-torch"}
RESULT = re.compile(r"^(?P<layout>\S+)@(?P<digest>sha256:[0-9a-f]{64})$")

# Runs the CLI after proving that the network namespace holds nothing but the loopback interface.
NETNS_LAUNCHER = (
    "import socket, sys\n"
    "names = sorted(name for _, name in socket.if_nameindex())\n"
    "sys.stderr.write(f'network interfaces: {names}\\n')\n"
    "if names != ['lo']:\n"
    "    sys.exit(97)\n"
    "from ocibuild.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def example_names() -> list:
    """The required examples plus every other examples/<name>/cog.yaml present now (slow ones marked)."""
    present = sorted(p.parent.name for p in EXAMPLES.glob("*/cog.yaml"))
    names = [*REQUIRED_EXAMPLES, *(name for name in present if name not in REQUIRED_EXAMPLES)]
    slow = pytest.mark.skipif(not os.environ.get("OCIBUILD_SLOW"), reason="GBs of CUDA wheels; set OCIBUILD_SLOW=1")
    return [pytest.param(name, marks=[pytest.mark.slow, slow]) if name in SLOW_EXAMPLES else name for name in names]


def copy_project(src: Path, dest: Path) -> Path:
    """A fresh checkout of ``src`` at ``dest`` (without build outputs)."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".ocibuild", "__pycache__"), symlinks=True)
    return dest


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"SOURCE_DATE_EPOCH", "OCIBUILD_CACHE"}}
    env.update(extra)
    return env


def unshare_prefix() -> list[str]:
    tool = shutil.which("unshare")
    if tool is None:
        pytest.fail("unshare (util-linux) is not installed")
    return [tool, "--net"] if os.geteuid() == 0 else [tool, "--user", "--map-root-user", "--net"]


def ocibuild(
    *args: str,
    env: dict[str, str] | None = None,
    umask: int | None = None,
    cwd: Path | None = None,
    no_network: bool = False,
    timeout: float = 900,
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a subprocess (inside a fresh network namespace when ``no_network``)."""
    if no_network:
        cmd = [*unshare_prefix(), sys.executable, "-c", NETNS_LAUNCHER, *args]
    else:
        cmd = [sys.executable, "-m", "ocibuild", *args]
    preexec = (lambda: os.umask(umask)) if umask is not None else None
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env=env if env is not None else base_env(),
        cwd=cwd,
        preexec_fn=preexec,
        timeout=timeout,
    )


def digest_of(result: subprocess.CompletedProcess[str]) -> str:
    """The manifest digest printed by a successful build (fails the test with the output otherwise)."""
    lines = result.stdout.splitlines()
    if result.returncode != 0 or not lines or not RESULT.match(lines[-1]):
        pytest.fail(f"build failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    return RESULT.match(lines[-1]).group("digest")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def check_store(root: Path) -> None:
    """Every entry a build would trust is complete: blobs, key records, .debs and wheels match their hashes."""
    problems = []
    for blob in (root / "blobs" / "sha256").glob("*"):
        if file_sha256(blob) != blob.name:
            problems.append(f"blob {blob.name} does not match its content")
    for key in (root / "keys").rglob("*.json"):
        try:
            record = json.loads(key.read_text())
            blob = root / "blobs" / "sha256" / record["digest"].split(":", 1)[1]
        except (ValueError, KeyError, IndexError, AttributeError) as exc:
            problems.append(f"key record {key.name} is unreadable ({exc})")
            continue
        if not blob.is_file():
            problems.append(f"key record {key.name} points to a missing blob {record['digest']}")
        elif blob.stat().st_size != record["size"] or file_sha256(blob) != blob.name:
            problems.append(f"key record {key.name}: blob {record['digest']} has the wrong size or content")
    for deb in (root / "debs").glob("*.deb"):
        if file_sha256(deb) != deb.stem:
            problems.append(f"deb {deb.name} does not match its name")
    for wheel in (root / "wheels").glob("*/*"):
        if (
            wheel.is_file()
            and re.fullmatch(r"[0-9a-f]{64}", wheel.parent.name)
            and file_sha256(wheel) != wheel.parent.name
        ):
            problems.append(f"wheel {wheel} does not match its sha256")
    for index in (root / "fingerprints").rglob("*.json"):
        try:
            json.loads(index.read_text())
        except ValueError:
            problems.append(f"fingerprint index {index.name} is truncated")
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="session")
def warm_hello(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(store, project, digest): hello-world built once online into a store the other tests seed from."""
    base = tmp_path_factory.mktemp("warm-hello")
    project = copy_project(EXAMPLES / "hello-world", base / "project")
    store = base / "store"
    digest = digest_of(ocibuild(str(project), "--cache-dir", str(store), "-q"))
    return store, project, digest
