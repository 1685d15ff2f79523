"""ocibuild as a container image built by ocibuild (issue 20): the image of scripts/ocibuild-image builds a project
mounted read-only, as an unprivileged user, and gets the digest the host gets."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reproducible.conftest import EXAMPLES, copy_project

REPO = Path(__file__).resolve().parents[2]
RESULT = re.compile(r"@(sha256:[0-9a-f]{64})\s*$")
UNPRIVILEGED = (
    "import os, sys; os.setgroups([]); os.setgid(1000); os.setuid(1000); os.execvp(sys.argv[1], sys.argv[1:])"
)

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def _run(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)
    assert done.returncode == 0, f"{args[:4]} failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return done.stdout


def _digest(stdout: str) -> str:
    match = RESULT.search(stdout)
    assert match, stdout
    return match.group(1)


def _owned_copy(src: Path, dest: Path, uid: int) -> Path:
    """The downloads of ``src`` (never its layers or keys) copied to ``dest`` and owned by ``uid``."""
    for part in ("debs", "wheels", "debian"):
        if (src / part).is_dir():
            shutil.copytree(src / part, dest / part)
    for root, dirs, files in os.walk(dest):
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), uid, uid, follow_symlinks=False)
    os.chown(dest, uid, uid)
    return dest


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand files to uid 1000 and to run a container")
def test_the_ocibuild_image_builds_a_mounted_project_unprivileged_with_the_hosts_digest(tmp_path, shared_cache):
    recipe = shutil.copytree(REPO / "scripts" / "ocibuild-image", tmp_path / "ocibuild-image")
    image = tmp_path / "image"
    env = {**os.environ, "OCIBUILD_SRC": str(REPO), "PYTHON": sys.executable}
    _run(str(recipe / "build.sh"), "-q", "--cache-dir", str(shared_cache), "-o", str(image), env=env)

    project = copy_project(EXAMPLES / "hello-world", tmp_path / "project")
    build = ["--offline", "-q", "--source-date-epoch", "0"]
    host_store = _owned_copy(shared_cache, tmp_path / "host-store", 0)
    ocibuild = [sys.executable, "-m", "ocibuild"]
    host = _digest(
        _run(*ocibuild, "build", str(project), "--cache-dir", str(host_store), "-o", str(tmp_path / "h"), *build)
    )

    store = _owned_copy(shared_cache, tmp_path / "store", 1000)
    out = tmp_path / "out"
    out.mkdir()
    os.chown(out, 1000, 1000)
    inside = _run(
        *ocibuild, "run", "-e", "HOME=/tmp",
        "-v", f"{project}:/project:ro", "-v", f"{store}:/cache", "-v", f"{out}:/out",
        str(image), "python", "-c", UNPRIVILEGED, "python", "-m", "ocibuild",
        "build", "/project", "--cache-dir", "/cache", "-o", "/out/image", *build,
    )  # fmt: skip
    assert _digest(inside) == host
    assert (out / "image" / "index.json").stat().st_uid == 1000, "the build ran as uid 1000"
