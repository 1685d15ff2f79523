"""``--offline`` with an input missing from the store: a one-line error naming it, no traceback, no network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import seed_store
from tests.reproducible.conftest import REPO, copy_project, ocibuild

BASE_LOCK = REPO / "base-images" / "bookworm-py3.11.lock.json"


def _a_locked_deb() -> dict:
    packages = json.loads(BASE_LOCK.read_text())["platforms"]["linux/amd64"]["packages"]
    return next(p for p in packages if p["name"] == "libmd0")


def _store_without_one_deb(warm: Path, dest: Path) -> tuple[Path, dict]:
    pkg = _a_locked_deb()
    store = seed_store(warm, dest)
    (store / "debs" / f"{pkg['sha256']}.deb").unlink()
    return store, pkg


def _check_one_line_error(result, pkg: dict) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip() and not ln.startswith("network interfaces:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert pkg["name"] in lines[0] or pkg["sha256"] in lines[0], lines[0]
    assert not result.stdout.strip()


@pytest.mark.integration
def test_offline_missing_deb_without_network_is_a_one_line_error(warm_hello, tmp_path: Path):
    store, project, _ = warm_hello
    store, pkg = _store_without_one_deb(store, tmp_path / "store")
    proj = copy_project(project, tmp_path / "proj")
    result = ocibuild(str(proj), "--cache-dir", str(store), "--offline", "-q", no_network=True)
    assert "network interfaces: ['lo']" in result.stderr
    _check_one_line_error(result, pkg)


@pytest.mark.integration
def test_offline_missing_deb_is_an_error_even_with_a_network(warm_hello, tmp_path: Path):
    store, project, _ = warm_hello
    store, pkg = _store_without_one_deb(store, tmp_path / "store")
    proj = copy_project(project, tmp_path / "proj")
    result = ocibuild(str(proj), "--cache-dir", str(store), "--offline", "-q")
    assert not (store / "debs" / f"{pkg['sha256']}.deb").exists(), "--offline downloaded the missing .deb"
    _check_one_line_error(result, pkg)
