"""``ocibuild run`` from the command line: an OCI layout and a dual tarball, with -e and a command override."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ocibuild.oci import Entry, ImageConfig, Store, build_image, write_archive, write_layer, write_layout
from ocibuild.run.runtime import runc_root
from tests.helpers import require_tool

pytestmark = pytest.mark.integration


@pytest.fixture
def busybox_layout(tmp_path: Path) -> Path:
    store = Store(tmp_path / "build-store")
    busybox = Path(require_tool("busybox")).resolve()
    layer = write_layer(
        [
            Entry.file_from("bin/busybox", busybox, 0o755),
            Entry.symlink("bin/sh", "busybox"),
            Entry.directory("tmp", 0o1777),
        ],
        store,
    )
    image = build_image(
        [layer], ImageConfig(env=["PATH=/bin", "GREETING=hello"], cmd=["/bin/sh", "-c", "echo $GREETING"])
    )
    write_archive(tmp_path / "image.tar", image, ["test/busybox:latest"])
    return write_layout(tmp_path / "layout", image, ["latest"])


def ocibuild(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ocibuild", *args], capture_output=True, text=True, timeout=120)


def test_run_uses_the_image_cmd_env_and_overrides(busybox_layout: Path, tmp_path: Path):
    cache = ["--cache-dir", str(tmp_path / "cache")]
    default = ocibuild("run", *cache, str(busybox_layout))
    assert (default.returncode, default.stdout) == (0, "hello\n"), default.stderr
    override = ocibuild(
        "run", *cache, "-e", "GREETING=bonjour", str(busybox_layout), "/bin/sh", "-c", "echo $GREETING; exit 3"
    )
    assert (override.returncode, override.stdout) == (3, "bonjour\n"), override.stderr
    from_tarball = ocibuild("run", *cache, str(tmp_path / "image.tar"))
    assert (from_tarball.returncode, from_tarball.stdout) == (0, "hello\n"), from_tarball.stderr


def test_run_of_something_that_is_not_an_image_is_one_line(tmp_path: Path):
    (tmp_path / "junk.txt").write_text("not an image")
    result = ocibuild("run", "--cache-dir", str(tmp_path / "cache"), str(tmp_path / "junk.txt"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_published_port_that_is_taken_is_one_line_and_exit_2(busybox_layout: Path, tmp_path: Path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = ocibuild("run", "--cache-dir", str(tmp_path / "cache"), "-p", f"{port}:5000", str(busybox_layout))
    assert result.returncode == 2
    assert result.stderr == f"error: -p 127.0.0.1:{port}:5000: cannot listen: Address already in use\n"


def test_a_sigkilled_run_frees_its_port_and_leaves_no_container(busybox_layout: Path, tmp_path: Path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("cli")
    cache = tmp_path / "cache"
    args = ["run", "--cache-dir", str(cache), "-p", f"{port}:5000", "-v", f"{tmp_path / 'www'}:/www:ro"]
    command = [sys.executable, "-m", "ocibuild", *args, str(busybox_layout), "busybox", "httpd", "-f", "-p", "5000"]
    process = subprocess.Popen([*command, "-h", "/www"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            assert urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read() == b"cli"
            break
        except OSError:
            assert time.monotonic() < deadline and process.poll() is None, process.stderr
            time.sleep(0.1)
    process.kill()
    process.wait()
    deadline = time.monotonic() + 20
    while list((cache / "tmp").glob("run-*")) or _answers(port) or _containers_of(process.pid):
        assert time.monotonic() < deadline, "the killed run left its container or scratch behind"
        time.sleep(0.1)
    assert str(cache) not in Path("/proc/self/mounts").read_text()


def _containers_of(pid: int) -> list[str]:
    listed = subprocess.run(["runc", "--root", str(runc_root()), "list", "-q"], capture_output=True, text=True)
    return [cid for cid in listed.stdout.split() if cid.startswith(f"ocibuild-{pid}-")]


def _answers(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
    except OSError:
        return False
    return True
