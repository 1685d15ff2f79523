"""Base definitions, their checked-in locks, and the lock file format (no network)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from ocibuild.errors import BuildError, UserInputError
from ocibuild.sources import debian
from ocibuild.sources.debian.lock import debian_arch


@pytest.mark.parametrize(
    ("version", "name", "site"),
    [
        ("3.11", "bookworm-py3.11", "usr/local/lib/python3.11/dist-packages"),
        ("3.11.4", "bookworm-py3.11", "usr/local/lib/python3.11/dist-packages"),
        ("3.13", "trixie-py3.13", "usr/local/lib/python3.13/dist-packages"),
        ("3.14", "sid-py3.14", "usr/local/lib/python3.14/dist-packages"),
        ("3.12", "bookworm-py3.12", "usr/local/lib/python3.12/site-packages"),
        ("3.10", "bookworm-py3.10", "usr/local/lib/python3.10/site-packages"),
    ],
)
def test_python_version_picks_a_base(version: str, name: str, site: str) -> None:
    defn = debian.load_base_definition(version)
    assert defn.name == name and defn.site_packages == site


def test_unknown_python_version_is_a_user_error() -> None:
    with pytest.raises(UserInputError, match=r"python_version '3\.9': no base image \(available: .*bookworm-py3\.11"):
        debian.load_base_definition("3.9")


def test_debian_python_bases_include_security_and_updates() -> None:
    suites = [a.suite for a in debian.load_base_definition("3.11").archives]
    assert suites == ["bookworm", "bookworm-updates", "bookworm-security"]


@pytest.mark.parametrize("version", ["3.10", "3.11", "3.12", "3.13", "3.14"])
@pytest.mark.parametrize("platform", ["linux/amd64", "linux/arm64"])
def test_checked_in_locks_are_current_and_complete(version: str, platform: str) -> None:
    defn = debian.load_base_definition(version)
    lock = debian.load_lock(defn, platform)
    names = {p.name for p in lock.packages}
    assert {"libc6", "dash", "coreutils", "ca-certificates", "libstdc++6", "tzdata"} <= names
    if defn.interpreter == "debian":
        assert {f"python{defn.python}", f"libpython{defn.python}-stdlib"} <= names
    else:
        assert lock.interpreter_pin["key"].startswith(f"cpython-{defn.python}.")
    assert all(p.architecture in (debian_arch(platform), "all") for p in lock.packages)
    assert all(len(p.sha256) == 64 and p.url.endswith(p.filename) and p.size > 0 for p in lock.packages)
    assert lock.snapshot_date and lock.archives[0].inrelease.startswith("sha256:")
    raw = defn.lock_path.read_bytes()
    assert raw == json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode() + b"\n"


def test_write_lock_keeps_other_platforms_and_round_trips(tmp_path: Path) -> None:
    defn = debian.load_base_definition("3.11")
    amd, arm = debian.load_lock(defn, "linux/amd64"), debian.load_lock(defn, "linux/arm64")
    path = tmp_path / "x.lock.json"
    debian.write_lock(amd, path)
    debian.write_lock(arm, path)
    assert debian.read_lock(path, "linux/amd64") == amd
    assert debian.read_lock(path, "linux/arm64/v8") == arm


def test_stale_or_missing_locks_are_refused(tmp_path: Path) -> None:
    defn = debian.load_base_definition("3.11")
    changed = dataclasses.replace(defn, packages=(*defn.packages, "curl"))
    with pytest.raises(BuildError, match="stale"):
        debian.load_lock(changed, "linux/amd64")
    with pytest.raises(BuildError, match="no lock file"):
        debian.read_lock(tmp_path / "none.lock.json")
    with pytest.raises(BuildError, match="unsupported platform"):
        debian.load_lock(defn, "linux/s390x")
