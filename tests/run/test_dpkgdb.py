"""The files of packages dpkg installed during a command are kept in its layer, even over identical files."""

from __future__ import annotations

import os
from pathlib import Path

from ocibuild.run.diff import diff_rootfs
from ocibuild.run.dpkgdb import installed_paths

STANZA = "Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {version}\n"


def _root(path: Path, packages: dict[str, str], tool: bytes = b"curl\n") -> Path:
    (path / "var/lib/dpkg/info").mkdir(parents=True)
    (path / "usr/bin").mkdir(parents=True)
    os.symlink("usr/bin", path / "bin")
    (path / "usr/bin/curl").write_bytes(tool)
    status = "\n".join(STANZA.format(name=n, version=v) for n, v in packages.items())
    (path / "var/lib/dpkg/status").write_text(status)
    for name in packages:
        (path / f"var/lib/dpkg/info/{name}.list").write_text("/.\n/bin\n/bin/curl\n")
    return path


def test_a_reinstalled_package_is_kept_though_its_bytes_did_not_change(tmp_path: Path) -> None:
    before = _root(tmp_path / "before", {"base-files": "12"})
    after = _root(tmp_path / "after", {"base-files": "12", "curl": "7.88"})
    os.utime(after / "usr/bin/curl", ns=(0, 0))  # dpkg sets the .deb's time: only the contents could tell
    assert installed_paths(before, after) == {"bin", "usr/bin/curl"}  # /bin/curl is usr/bin/curl: bin is a link
    assert "usr/bin/curl" not in {e.path for e in diff_rootfs(before, after)}
    changed = {e.path for e in diff_rootfs(before, after, changed=installed_paths(before, after))}
    assert {"usr/bin/curl", "var/lib/dpkg/status", "var/lib/dpkg/info/curl.list"} <= changed


def test_packages_whose_status_did_not_change_add_nothing(tmp_path: Path) -> None:
    before = _root(tmp_path / "before", {"curl": "7.88"})
    after = _root(tmp_path / "after", {"curl": "7.88"})
    assert installed_paths(before, after) == set()
    assert installed_paths(tmp_path / "before", tmp_path / "missing") == set()
