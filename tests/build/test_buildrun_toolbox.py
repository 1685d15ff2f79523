"""build.run commands find what Cog's images give them: pip (into the image's site-packages), curl, wget and git;
the toolbox itself never reaches the image. A local HTTP server stands in for the file host and the git forge."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocibuild.cog.build import BuildOptions, build_project
from ocibuild.oci import Store
from tests.sources.python.conftest import build_wheel_file

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello-world"


@pytest.fixture
def host(tmp_path: Path) -> Iterator[str]:
    served = tmp_path / "served"
    served.mkdir()
    build_wheel_file(served, "url_pkg", "0.2", {"url_pkg/__init__.py": b"X = 2\n"})
    (served / "tool").write_text("#!/bin/sh\necho tool-ok\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "README").write_text("demo\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "x"]):
        subprocess.run([*git, "-C", str(repo), *args], check=True)
    subprocess.run([*git, "clone", "-q", "--bare", str(repo), str(served / "demo.git")], check=True)
    subprocess.run(["git", "-C", str(served / "demo.git"), "update-server-info"], check=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def _files(image) -> dict[str, set[str]]:
    names = [h["comment"] for h in json.loads(image.config_bytes)["history"] if not h.get("empty_layer")]
    out = {}
    for name, layer in zip(names, image.layers, strict=True):
        with tarfile.open(layer.path) as tar:
            out[name] = set(tar.getnames())
    return out


@pytest.mark.integration
def test_pip_curl_wget_and_git_work_in_build_run_and_stay_out_of_the_image(host: str, tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project)
    commands = [
        f"pip install {host}/url_pkg-0.2-py3-none-any.whl",
        f"curl -fsSL -o /usr/local/bin/tool {host}/tool && chmod +x /usr/local/bin/tool",
        f"git clone -q {host}/demo.git /opt/demo && wget -q -O /opt/tool2 {host}/tool",
    ]
    run = "".join(f"    - {json.dumps(c)}\n" for c in commands)
    (project / "cog.yaml").write_text((project / "cog.yaml").read_text().replace("build:\n", f"build:\n  run:\n{run}"))
    result = build_project(project / "cog.yaml", BuildOptions(store=Store(tmp_path / "store")))
    files = _files(result.target)
    everything = set().union(*files.values())
    assert "usr/local/lib/python3.11/dist-packages/url_pkg/__init__.py" in files["run-0"]
    assert "usr/local/bin/tool" in files["run-1"]
    assert {"opt/demo/README", "opt/tool2"} <= files["run-2"]
    assert not {"usr/bin/curl", "usr/bin/wget", "usr/bin/git", "usr/bin/pip"} & everything, "the toolbox shipped"
    assert not [n for n in files["run-0"] if "__pycache__" in n and "url_pkg" not in n], "stray bytecode shipped"
    assert json.loads((project / "ocibuild.lock").read_text())["toolbox"]["linux/amd64"]["requested"]
