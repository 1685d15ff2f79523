"""``run_image`` under real runc (and the unshare fallback): config, -e, -v, networks, signals, cleanup."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from ocibuild.errors import UserInputError
from ocibuild.oci import Entry, LayerBlob, Store, write_layer, write_layout
from ocibuild.run import run_image
from ocibuild.run.extract import rootfs_for
from ocibuild.run.predict import free_port
from tests.run.conftest import image_of

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("runtime", ["runc", "unshare"])
def test_image_config_is_applied(store: Store, base_layer: LayerBlob, capfd, runtime: str) -> None:
    image = image_of(
        [base_layer],
        env=["PATH=/bin", "GREETING=hello"],
        entrypoint=["/bin/sh", "-c"],
        cmd=['echo "$GREETING $EXTRA $(id -u):$(id -g) $(pwd)"; ls -d /proc/1 /dev/null /dev/shm /tmp; exit 7'],
        working_dir="/work",
        user="app",
    )
    code = run_image(image, store, env=["EXTRA=x"], runtime=runtime)
    out = capfd.readouterr().out
    assert code == 7
    assert out.splitlines()[0] == "hello x 1000:1001 /work"
    assert "/dev/null" in out and "/dev/shm" in out


def test_command_replaces_cmd_and_keeps_entrypoint(store: Store, base_layer: LayerBlob, capfd) -> None:
    image = image_of([base_layer], entrypoint=["/bin/busybox"], cmd=["false"])
    assert run_image(image, store, command=["echo", "from", "command"]) == 0
    assert capfd.readouterr().out == "from command\n"


def test_volumes_read_write_and_read_only(store: Store, base_layer: LayerBlob, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("input")
    image = image_of([base_layer], cmd=["/bin/sh", "-c", "cat /rw/in.txt > /rw/out.txt && ! touch /ro/x"])
    assert run_image(image, store, volumes=[f"{data}:/rw", f"{data}:/ro:ro"]) == 0
    assert (data / "out.txt").read_text() == "input"
    assert not (data / "x").exists()
    with pytest.raises(UserInputError, match="does not exist"):
        run_image(image, store, volumes=[f"{tmp_path}/missing:/x"])


def test_the_cached_rootfs_is_never_modified(store: Store, base_layer: LayerBlob) -> None:
    image = image_of([base_layer], cmd=["/bin/sh", "-c", "rm /bin/sh; echo x > /etc/new"])
    root = rootfs_for(image.layers, store)
    before = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    assert run_image(image, store) == 0
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == before
    assert not list((store.root / "tmp").iterdir()), "scratch removed"


def test_a_private_network_has_only_loopback(store: Store, base_layer: LayerBlob, capfd) -> None:
    image = image_of([base_layer], cmd=["/bin/sh", "-c", "ls /sys/class/net"])
    assert run_image(image, store, network="none") == 0
    assert capfd.readouterr().out.split() == ["lo"]


def _httpd(store: Store, base_layer: LayerBlob, tmp_path: Path, port: int) -> Path:
    (tmp_path / "www").mkdir()
    (tmp_path / "www/index.html").write_text("served from the container")
    image = image_of([base_layer], cmd=["/bin/busybox", "httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/www"])
    layout = tmp_path / "layout"
    write_layout(layout, image, ["latest"])
    return layout


def _run_in_subprocess(store: Store, layout: Path, extra: str, tmp_path: Path) -> subprocess.Popen[str]:
    script = textwrap.dedent(
        f"""
        import sys
        from ocibuild.oci import Store, read_layout
        from ocibuild.run import run_image
        image = read_layout({str(layout)!r})
        sys.exit(run_image(image, Store({str(store.root)!r}), volumes=[{str(tmp_path / "www")!r} + ":/www"]{extra}))
        """
    )
    return subprocess.Popen([sys.executable, "-c", script], cwd=REPO, text=True, stderr=subprocess.PIPE)


def _get(port: int, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_host_network_published_port_and_sigterm_cleanup(store: Store, base_layer: LayerBlob, tmp_path: Path) -> None:
    container_port, host_port = free_port(), free_port()
    layout = _httpd(store, base_layer, tmp_path, container_port)
    process = _run_in_subprocess(store, layout, f", publish=['{host_port}:{container_port}']", tmp_path)
    try:
        assert _get(container_port) == "served from the container"
        assert _get(host_port) == "served from the container"
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) != 0
    finally:
        if process.poll() is None:
            process.kill()
    assert process.stderr is not None and "Traceback" not in process.stderr.read()
    assert not list((store.root / "tmp").iterdir()), "no runc state, bundle or overlay left"
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{container_port}/", timeout=1)
    assert str(store.root) not in Path("/proc/self/mounts").read_text()


def test_unshare_fallback_stops_on_sigint(store: Store, base_layer: LayerBlob, tmp_path: Path) -> None:
    port = free_port()
    layout = _httpd(store, base_layer, tmp_path, port)
    process = _run_in_subprocess(store, layout, ", runtime='unshare'", tmp_path)
    try:
        assert _get(port) == "served from the container"
        process.send_signal(signal.SIGINT)
        assert process.wait(20) != 0
    finally:
        if process.poll() is None:
            process.kill()
    assert not list((store.root / "tmp").iterdir())
    assert str(store.root) not in Path("/proc/self/mounts").read_text()


def test_a_missing_command_exits_127(store: Store, base_layer: LayerBlob) -> None:
    image = image_of([base_layer], cmd=["/no/such/program"])
    assert run_image(image, store) == 127
    layer = write_layer([Entry.file("x", b"")], store)
    with pytest.raises(UserInputError, match="no Entrypoint or Cmd"):
        run_image(image_of([layer]), store)
