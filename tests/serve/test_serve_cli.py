"""The ``serve`` subcommand's arguments: checked before anything is built, one line and exit 2 when wrong."""

from __future__ import annotations

import io
import socket

import pytest

from ocibuild.cli import main
from ocibuild.errors import UserInputError
from ocibuild.progress import Reporter, use
from ocibuild.serve import Listen, _announce, open_proxy
from ocibuild.serve.command import title_for
from tests.helpers import REPO


def test_help_names_the_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--playground" in out and "HOST_PORT" in out and "--gpus" in out


def test_a_bad_port_is_exit_2_before_any_build(capsys, tmp_path):
    project = tmp_path / "never-built"
    assert main(["serve", str(project), "-p", "nope", "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: -p nope: expected [IP:]HOST_PORT"  # not "no such project": nothing was resolved


def test_a_taken_port_is_a_user_error():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(UserInputError, match=f"-p 127.0.0.1:{port}: cannot listen"):
            open_proxy(Listen("127.0.0.1", port), 1, playground=True, title="x")


@pytest.mark.parametrize("quiet", [False, True])
def test_the_url_is_the_result_and_the_hint_is_quiet_with_q(capsys, quiet):
    hints = io.StringIO()
    with use(Reporter(quiet=quiet, stream=hints, mode="plain")):
        _announce("http://127.0.0.1:8393/")
    assert capsys.readouterr().out == "http://127.0.0.1:8393/\n"
    assert ("serving on http://127.0.0.1:8393/ (Ctrl-C stops)" in hints.getvalue()) != quiet, hints.getvalue()


def test_page_title_is_the_project_name():
    assert title_for(str(REPO / "examples" / "streaming")) == "streaming"
    assert title_for(str(REPO / "examples" / "streaming" / "cog.yaml")) == "streaming"
    assert title_for("registry.example/team/model:1") == "registry.example/team/model:1"


def test_ipv6_loopback_listener():
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    from ocibuild.serve.proxy import Proxy

    with Proxy(1, "::1", 0) as proxy:
        assert proxy.url.startswith("http://[::1]:")
        with socket.create_connection(("::1", proxy.port), timeout=5) as sock:
            sock.sendall(f"GET /playground HTTP/1.1\r\nHost: [::1]:{proxy.port}\r\nConnection: close\r\n\r\n".encode())
            assert sock.recv(64).startswith(b"HTTP/1.1 200")


@pytest.mark.integration
def test_the_wheel_ships_the_page(tmp_path):
    """``packages = ["ocibuild"]`` takes the static files along (hatch includes package data)."""
    import shutil
    import subprocess
    import zipfile

    uv = shutil.which("uv") or str(REPO / ".venv" / "bin" / "uv")
    subprocess.run([uv, "build", "--wheel", "-q", "-o", str(tmp_path)], cwd=REPO, check=True, timeout=300)
    (wheel,) = tmp_path.glob("ocibuild-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("index.html", "app.js", "style.css", "favicon.svg"):
        assert f"ocibuild/serve/static/{name}" in names
