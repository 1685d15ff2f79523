"""``run_image`` under real runc (and the unshare fallback): config, -e, -v, networks, signals, cleanup."""

from __future__ import annotations

import functools
import http.server
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from ocibuild.errors import UserInputError
from ocibuild.oci import Entry, LayerBlob, Store, write_layer, write_layout
from ocibuild.run import run_image
from ocibuild.run.extract import rootfs_for
from ocibuild.run.runtime import runc_root
from tests.run.conftest import image_of
from tests.runner.harness import free_port

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


@pytest.mark.parametrize("runtime", ["runc", "unshare"])
def test_a_run_has_a_network_of_its_own_with_loopback_up(store: Store, base_layer: LayerBlob, capfd, runtime):
    image = image_of([base_layer], cmd=["/bin/sh", "-c", "ip link show lo; tail -n +3 /proc/net/dev | cut -d: -f1"])
    assert run_image(image, store, runtime=runtime) == 0
    lines = capfd.readouterr().out.splitlines()
    assert "<LOOPBACK,UP" in lines[0]
    assert {line.strip() for line in lines[2:]} <= {"lo", "tap0"}  # none of the host's (tap0: slirp4netns)


def _httpd(store: Store, base_layer: LayerBlob, tmp_path: Path, port: int) -> Path:
    (tmp_path / "www").mkdir(exist_ok=True)
    (tmp_path / "www/index.html").write_text("served from the container")
    image = image_of([base_layer], cmd=["/bin/busybox", "httpd", "-f", "-p", f"{port}", "-h", "/www"])
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
    return subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, text=True, stderr=subprocess.PIPE, start_new_session=True
    )


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


def test_published_port_and_sigterm_cleanup(store: Store, base_layer: LayerBlob, tmp_path: Path) -> None:
    container_port, host_port = free_port(), free_port()
    layout = _httpd(store, base_layer, tmp_path, container_port)
    process = _run_in_subprocess(store, layout, f", publish=['{host_port}:{container_port}']", tmp_path)
    try:
        assert _get(host_port) == "served from the container"
        with pytest.raises(OSError):  # the container's own port is not the host's
            urllib.request.urlopen(f"http://127.0.0.1:{container_port}/", timeout=1)
        assert _listening(host_port) == ["127.0.0.1"]  # not every interface
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
    layout = _httpd(store, base_layer, tmp_path, 80)
    process = _run_in_subprocess(store, layout, f", runtime='unshare', publish=['{port}:80']", tmp_path)
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


def _listening(port: int) -> list[str]:
    """The addresses a TCP port of this host listens on (from /proc/net/tcp)."""
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, _, hex_port = local.partition(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.append(".".join(str(b) for b in reversed(bytes.fromhex(address))))
    return found


@pytest.mark.parametrize("runtime", ["runc", "unshare"])
def test_two_models_on_one_container_port_side_by_side(
    store: Store, base_layer: LayerBlob, tmp_path: Path, runtime: str
) -> None:
    layout = _httpd(store, base_layer, tmp_path, 5000)
    ports = [free_port(), free_port()]
    processes = [
        _run_in_subprocess(store, layout, f", runtime={runtime!r}, publish=['{port}:5000']", tmp_path) for port in ports
    ]
    try:
        assert [_get(port) for port in ports] == ["served from the container"] * 2
        assert all(p.poll() is None for p in processes)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(20)
    assert not list((store.root / "tmp").iterdir())


def _ocibuild_containers() -> list[str]:
    listed = subprocess.run(["runc", "--root", str(runc_root()), "list", "-q"], capture_output=True, text=True)
    return listed.stdout.split()


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _wait_until(condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("runtime", ["runc", "unshare"])
def test_a_sigkilled_run_leaves_no_container(store: Store, base_layer: LayerBlob, tmp_path: Path, runtime) -> None:
    port = free_port()
    layout = _httpd(store, base_layer, tmp_path, 5000)
    before = set(_ocibuild_containers())
    process = _run_in_subprocess(store, layout, f", runtime={runtime!r}, publish=['{port}:5000']", tmp_path)
    assert _get(port) == "served from the container"
    process.kill()
    process.wait()
    _wait_until(lambda: set(_ocibuild_containers()) <= before and not list((store.root / "tmp").iterdir()))
    _wait_until(lambda: not _listening(port))
    assert str(store.root) not in Path("/proc/self/mounts").read_text()
    assert not [p for p in Path("/proc").glob("[0-9]*") if _cmdline(p).startswith("/bin/busybox httpd -f -p 5000")]


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_leftovers_of_a_run_whose_guard_died_too_are_reaped_by_the_next(
    store: Store, base_layer: LayerBlob, tmp_path: Path
) -> None:
    port = free_port()
    layout = _httpd(store, base_layer, tmp_path, 5000)
    before = set(_ocibuild_containers())
    process = _run_in_subprocess(store, layout, f", runtime='runc', publish=['{port}:5000']", tmp_path)
    assert _get(port) == "served from the container"
    deadline = time.monotonic() + 10
    while True:  # the guard starts beside the container; under load it may come a moment after the port answers
        guard = [pid for pid in _children(process.pid) if "ocibuild.run.guard" in _cmdline(Path(f"/proc/{pid}"))]
        if guard or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(guard) == 1
    os.kill(guard[0], signal.SIGKILL)
    process.kill()
    process.wait()
    time.sleep(0.5)
    left = set(_ocibuild_containers()) - before
    sockets = list(Path(tempfile.gettempdir()).glob(f"ocibuild-net-{process.pid}-*"))
    assert len(left) == 1 and list((store.root / "tmp").iterdir()) and sockets  # what a dead run leaves
    image = image_of([base_layer], cmd=["/bin/sh", "-c", "true"])
    assert run_image(image, store) == 0  # the next run reaps it
    assert not set(_ocibuild_containers()) & left
    assert not list((store.root / "tmp").iterdir()) and not [p for p in sockets if p.exists()]
    assert str(store.root) not in Path("/proc/self/mounts").read_text()


def _host_address() -> str:
    """This host's address on its outward interface (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("203.0.113.1", 9))
        return probe.getsockname()[0]


@pytest.mark.parametrize("runtime", ["runc", "unshare"])
def test_a_run_reaches_the_outside_but_not_the_hosts_loopback(
    store: Store, base_layer: LayerBlob, tmp_path: Path, capfd, runtime: str
) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("outside")
    before = _slirps()  # other runs on this machine (concurrent tests) may have their own
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "site"))
    with (
        http.server.ThreadingHTTPServer(("0.0.0.0", 0), handler) as outside,
        http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as loopback,
    ):
        for server in (outside, loopback):
            threading.Thread(target=server.serve_forever, daemon=True).start()
        script = (
            f"wget -q -O - http://{_host_address()}:{outside.server_address[1]}/; echo;"
            f" wget -q -O - http://10.0.2.2:{loopback.server_address[1]}/ || echo refused; cat /etc/resolv.conf"
        )
        code = run_image(image_of([base_layer], cmd=["/bin/sh", "-c", script]), store, runtime=runtime)
        for server in (outside, loopback):
            server.shutdown()
    assert code == 0
    assert capfd.readouterr().out.splitlines() == ["outside", "refused", "nameserver 10.0.2.3"]
    deadline = time.monotonic() + 10  # slirp4netns exits on its own once the namespace is gone
    while _slirps() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _slirps() - before, "this run's slirp4netns outlived it"


def _slirps() -> set[str]:
    return {p.name for p in Path("/proc").glob("[0-9]*") if _cmdline(p).startswith("/usr/bin/slirp4netns")}
