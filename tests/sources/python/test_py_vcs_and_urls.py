"""Every requirement form pip and uv take: an unnamed wheel URL (pinned by sha256) and a git URL (pinned by commit),
served by a local HTTP server standing in for a file host and a git forge."""

from __future__ import annotations

import functools
import http.server
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocibuild.oci.store import Store
from ocibuild.sources.python import PythonTarget, lock_python, python_layers, read_requirements

from .conftest import build_wheel_file

PYPROJECT = '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'


def _git(*args: str) -> str:
    env = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    return subprocess.run(["git", *env, *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(base URL, commit): a bare git repository (dumb HTTP) and a wheel, served on a free loopback port."""
    source = tmp_path / "demo"
    (source / "src" / "demo_pkg").mkdir(parents=True)
    (source / "pyproject.toml").write_text(PYPROJECT + '[project]\nname = "demo-pkg"\nversion = "0.1.0"\n')
    (source / "src" / "demo_pkg" / "__init__.py").write_text("VALUE = 7\n")
    _git("-C", str(source), "init", "-q", "-b", "main")
    _git("-C", str(source), "add", "-A")
    _git("-C", str(source), "commit", "-qm", "first")
    commit = _git("-C", str(source), "rev-parse", "HEAD")
    served = tmp_path / "served"
    served.mkdir()
    _git("clone", "-q", "--bare", str(source), str(served / "demo.git"))
    _git("-C", str(served / "demo.git"), "update-server-info")
    build_wheel_file(served, "url_pkg", "0.2", {"url_pkg/__init__.py": b"X = 2\n"})
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", commit
    finally:
        server.shutdown()


def test_unnamed_url_and_vcs_lines_are_read_as_requirements(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        "--pre -f https://example.com/wheels/\ngit+https://example.com/org/repo.git@v1#egg=repo\n"
        "https://example.com/x-1.0-py3-none-any.whl\nname @ git+https://example.com/o/n.git@abc\n"
    )
    reqs = read_requirements(tmp_path, "requirements.txt")
    assert [r.text for r in reqs.requirements] == [
        "git+https://example.com/org/repo.git@v1#egg=repo",
        "https://example.com/x-1.0-py3-none-any.whl",
        "name @ git+https://example.com/o/n.git@abc",
    ]
    assert reqs.pre and reqs.find_links == ("https://example.com/wheels/",)


@pytest.mark.integration
def test_git_and_url_requirements_are_pinned_and_installed(forge, tmp_path: Path, pypi, unpack) -> None:
    base, commit = forge
    project = tmp_path / "project"
    project.mkdir()
    (project / "requirements.txt").write_text(f"git+{base}/demo.git@main\n{base}/url_pkg-0.2-py3-none-any.whl\n")
    section = lock_python(read_requirements(project, "requirements.txt"), PythonTarget())
    by_name = {d["name"]: d for d in section["distributions"]}
    assert by_name["demo-pkg"]["kind"] == "git" and by_name["demo-pkg"]["commit"] == commit
    assert by_name["url-pkg"]["kind"] == "wheel" and len(by_name["url-pkg"]["sha256"]) == 64

    layers = python_layers(section, PythonTarget(), Store(tmp_path / "store"), 0, project_dir=project)
    tree = unpack(layers, tmp_path / "rootfs")
    site = tree / "usr/local/lib/python3.11/dist-packages"
    assert (site / "demo_pkg/__init__.py").read_text() == "VALUE = 7\n"
    assert (site / "url_pkg/__init__.py").read_text() == "X = 2\n"
