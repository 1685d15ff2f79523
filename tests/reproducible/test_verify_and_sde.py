"""``--verify-reproducible``, ``describe_difference`` and the default SOURCE_DATE_EPOCH."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ocibuild.cog.build import BuildOptions
from ocibuild.errors import BuildError
from ocibuild.oci import Compression, Entry, ImageConfig, Store, build_image, read_layout, write_layer
from ocibuild.reproducible import describe_difference, verify_reproducible
from ocibuild.sde import resolve_source_date_epoch
from tests.helpers import seed_store
from tests.reproducible.conftest import base_env, copy_project, digest_of, ocibuild


@pytest.mark.integration
@pytest.mark.parametrize("offline", [False, True], ids=["online", "offline-without-network"])
def test_verify_reproducible_passes_on_hello_world(warm_hello, tmp_path: Path, offline: bool):
    warm_store, warm_project, _ = warm_hello
    project = copy_project(warm_project, tmp_path / "project")
    store = seed_store(warm_store, tmp_path / "store")
    flags = ["--offline"] if offline else []
    result = ocibuild(str(project), "--cache-dir", str(store), "--verify-reproducible", *flags, no_network=offline)
    digest = digest_of(result)
    assert f"reproducible: a fresh build gave the same digest {digest}" in result.stderr
    assert not list((store / "tmp").iterdir()), "the second build's temporary store was left behind"


def _two_images(tmp_path: Path, second_b: bytes, compression: Compression = Compression.GZIP, env=()):
    store = Store(tmp_path / "store")
    base = write_layer([Entry.directory("etc"), Entry.file("etc/os-release", b"ID=test\n")], store)

    def app(b: bytes, compression: Compression = Compression.GZIP):
        entries = [Entry.directory("app"), Entry.file("app/a.txt", b"same"), Entry.file("app/b.txt", b)]
        return write_layer([*entries, Entry.file("app/c.txt", b"same too")], store, compression)

    config = ImageConfig()
    first = build_image([base, app(b"one")], config)
    second = build_image([base, app(second_b, compression)], dataclasses.replace(config, env=list(env)))
    return first, second


def test_describe_difference_names_the_first_differing_layer_and_file(tmp_path: Path):
    first, second = _two_images(tmp_path, b"two")
    message = describe_difference(first, second)
    assert "layer 1" in message and "/app/b.txt" in message, message
    assert "\n" not in message


def test_describe_difference_tells_compression_and_config_differences(tmp_path: Path):
    first, second = _two_images(tmp_path, b"one", Compression.ZSTD)
    message = describe_difference(first, second)
    assert "layer 1" in message and "compressed" in message, message
    first, second = _two_images(tmp_path, b"one", env=["A=1"])
    assert "config" in describe_difference(first, second)


def test_verify_reproducible_raises_naming_the_difference(tmp_path: Path, monkeypatch):
    first, second = _two_images(tmp_path, b"two")
    fake = type("Result", (), {"target": second, "digest": second.digest})

    monkeypatch.setattr("ocibuild.cog.build.build_project", lambda cog_yaml, options: fake)
    options = BuildOptions(store=Store(tmp_path / "store"))
    with pytest.raises(BuildError, match=r"layer 1 .*/app/b\.txt"):
        verify_reproducible(
            tmp_path / "cog.yaml", options, type("Result", (), {"target": first, "digest": first.digest})
        )


def _git(repo: Path, *args: str, date: str | None = None) -> None:
    env = base_env(GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1")
    if date:
        env.update(GIT_COMMITTER_DATE=date, GIT_AUTHOR_DATE=date)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        env=env,
    )


@pytest.mark.integration
def test_default_source_date_epoch_is_the_last_commit_time_else_zero(warm_hello, tmp_path: Path, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    warm_store, warm_project, _ = warm_hello
    plain = copy_project(warm_project, tmp_path / "plain")
    assert resolve_source_date_epoch(None, plain) == 0

    repo = tmp_path / "repo"
    project = copy_project(warm_project, repo / "models" / "hello")
    _git(repo, "init", "-q")
    assert resolve_source_date_epoch(None, project) == 0  # a repository without commits
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "first", date="2021-03-04T07:06:07+02:00")
    (project / "predict.py").write_text((project / "predict.py").read_text() + "\n# edited, uncommitted\n")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "second", date="2022-01-02T03:04:05Z")
    assert resolve_source_date_epoch(None, project) == 1641092645
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "5")
    assert resolve_source_date_epoch(None, project) == 5
    assert resolve_source_date_epoch(7, project) == 7
    monkeypatch.delenv("SOURCE_DATE_EPOCH")

    calls = _noting_git(tmp_path / "bin")
    env = base_env(PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "image"
    built = ocibuild(str(project), "--cache-dir", str(seed_store(warm_store, tmp_path / "s")), "-o", str(out), env=env)
    image = read_layout(out)
    assert digest_of(built) == image.digest
    config = json.loads(image.config_bytes)
    assert config["created"].startswith("2022-01-02T03:04:05")
    assert {h["created"] for h in config["history"]} == {config["created"]}
    assert [c for c in calls.read_text().splitlines() if " log " in c] == [f"-C {project} log -1 --format=%ct"], (
        "one build reads the commit time once (the build memo's key and the build share it)"
    )


def _noting_git(bin_dir: Path) -> Path:
    """A ``git`` in ``bin_dir`` that notes its arguments in the returned file, then runs the real one."""
    real, calls = shutil.which("git"), bin_dir / "calls.txt"
    assert real is not None
    bin_dir.mkdir()
    (bin_dir / "git").write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec {real} "$@"\n')
    (bin_dir / "git").chmod(0o755)
    return calls


def test_git_is_optional(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on PATH
    assert shutil.which("git") is None
    assert resolve_source_date_epoch(None, tmp_path) == 0
