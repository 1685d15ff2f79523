"""Fixtures for attestation tests: hello-world built once (in a git checkout) with and without attestations."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import REPO, seed_store


def ocibuild(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    return subprocess.run(
        [sys.executable, "-m", "ocibuild", *args], capture_output=True, env=env, cwd=cwd, timeout=600, check=False
    )


@dataclass(frozen=True)
class Built:
    project: Path
    layout: Path
    digest: str
    commit: str


def _git(project: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_DATE": "@1700000000 +0000", "GIT_COMMITTER_DATE": "@1700000000 +0000"}
    cmd = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(project), *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout.strip()


@pytest.fixture(scope="session")
def hello_project(tmp_path_factory) -> Path:
    """hello-world in a git checkout of its own, with an origin remote."""
    project = tmp_path_factory.mktemp("attest") / "hello"
    shutil.copytree(REPO / "examples" / "hello-world", project, ignore=shutil.ignore_patterns(".ocibuild"))
    (project / ".gitignore").write_text(".ocibuild/\n")
    _git(project, "init", "-q")
    _git(project, "remote", "add", "origin", "https://example.com/models/hello.git")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "hello")
    return project


@pytest.fixture(scope="session")
def attest_cache(shared_cache, tmp_path_factory) -> Path:
    """The store of these tests, fresh for the session: they check the build memo and what it keeps (see
    tests/conftest.py), so nothing an earlier run left may answer for them."""
    return seed_store(shared_cache, tmp_path_factory.mktemp("attest-store"))


def build(project: Path, cache: Path, layout: Path, *extra: str) -> Built:
    result = ocibuild("build", str(project), "-o", str(layout), "--cache-dir", str(cache), "-q", *extra)
    assert result.returncode == 0, result.stderr.decode()
    digest = result.stdout.decode().strip().rsplit("@", 1)[1]
    return Built(project, layout, digest, _git(project, "rev-parse", "HEAD"))


@pytest.fixture(scope="session")
def attested(hello_project, attest_cache, tmp_path_factory) -> Built:
    """The default build: SPDX SBOM and provenance beside the image."""
    return build(hello_project, attest_cache, tmp_path_factory.mktemp("attested") / "layout")


@pytest.fixture(scope="session")
def bare(hello_project, attest_cache, tmp_path_factory) -> Built:
    """The same project built with no attestations."""
    layout = tmp_path_factory.mktemp("bare") / "layout"
    return build(hello_project, attest_cache, layout, "--sbom", "none", "--no-provenance")


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    from tests.registry.registry_helpers import need, start_registry

    need("docker-registry", "skopeo")
    with start_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg
