"""cog.yaml system_packages: resolved on top of the base lock into their own layer."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from ocibuild.errors import UserInputError
from ocibuild.oci.store import Store
from ocibuild.sources import debian

from .conftest import can_run_rootfs, extract_layers, run_in

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def base_lock() -> debian.BaseLock:
    return debian.load_lock(debian.load_base_definition("3.11"), "linux/amd64")


@pytest.mark.skipif(not can_run_rootfs(), reason="needs root and unshare to run the rootfs")
def test_ffmpeg_layer_runs_on_the_base(
    base_lock: debian.BaseLock, deb_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer, section = debian.system_packages_layer(base_lock, ["ffmpeg"], deb_store, 0)
    assert layer is not None
    extras = debian.read_section(section).packages("linux/amd64")
    assert len(extras) > 100 and "ffmpeg" in {p.name for p in extras}
    assert not {p.name for p in extras} & {p.name for p in base_lock.packages}

    rootfs = extract_layers([*debian.base_layers(base_lock, deb_store, 0), layer], tmp_path / "rootfs")
    result = run_in(rootfs, "/usr/bin/ffmpeg", "-hide_banner", "-version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ffmpeg version")
    assert "Package: ffmpeg\nStatus: install ok installed" in (rootfs / "var/lib/dpkg/status").read_text()

    def offline(*args, **kwargs):
        raise AssertionError("a pinned section must not resolve again")

    monkeypatch.setattr(requests.Session, "get", offline)
    again, same = debian.system_packages_layer(base_lock, ["ffmpeg"], deb_store, 0, lock_section=section)
    assert again == layer and same == section


def test_unknown_package_names_the_closest(base_lock: debian.BaseLock, deb_store: Store) -> None:
    with pytest.raises(UserInputError) as info:
        debian.system_packages_layer(base_lock, ["fffmpeg"], deb_store, 0)
    assert str(info.value).startswith(
        "cog.yaml: build.system_packages: unknown Debian package 'fffmpeg' (closest: ffmpeg"
    )


def test_packages_the_base_has_need_no_layer(base_lock: debian.BaseLock, deb_store: Store) -> None:
    layer, section = debian.system_packages_layer(base_lock, ["tzdata", "bash"], deb_store, 0)
    assert layer is None and section["platforms"]["linux/amd64"]["packages"] == []


def test_ubuntu_names_install_debians_package_and_the_lock_says_so(
    base_lock: debian.BaseLock, deb_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer, section = debian.system_packages_layer(base_lock, ["libtbb2", "libjpeg-turbo8"], deb_store, 0)
    assert layer is not None
    assert debian.substitutions(section, "linux/amd64") == {"libtbb2": "libtbb12", "libjpeg-turbo8": "libjpeg62-turbo"}
    names = {p.name for p in debian.read_section(section).packages("linux/amd64")}
    assert {"libtbb12", "libjpeg62-turbo"} <= names and not {"libtbb2", "libjpeg-turbo8"} & names

    def offline(*args, **kwargs):
        raise AssertionError("a pinned section must not resolve again")

    monkeypatch.setattr(requests.Session, "get", offline)
    again, same = debian.system_packages_layer(
        base_lock, ["libtbb2", "libjpeg-turbo8"], deb_store, 0, lock_section=section
    )
    assert again == layer and same == section
