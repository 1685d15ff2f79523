"""system_packages written for Cog's Ubuntu base: Debian's package for a name only Ubuntu has (no network)."""

from __future__ import annotations

import pytest

from ocibuild.sources.debian.ubuntu_names import debian_name

BOOKWORM_LIKE = {
    "libtbb12", "libtbbmalloc2", "libtbb-dev", "libavcodec59", "libavcodec-extra59", "libavcodec-dev",
    "libssl3", "libssl-dev", "libjpeg62-turbo", "libjpeg62-turbo-dev", "libgl1", "libpython3.11",
    "libwebp7", "libwebp-dev", "libfoo1", "libfoo2",
}  # fmt: skip


@pytest.mark.parametrize(
    ("ubuntu", "debian"),
    [
        ("libtbb2", "libtbb12"),  # another soname of the same library
        ("libavcodec58", "libavcodec59"),  # not libavcodec-extra59: another stem
        ("libssl1.1", "libssl3"),
        ("libwebp6", "libwebp7"),
        ("libjpeg-turbo8", "libjpeg62-turbo"),  # from the table: more than a soname differs
        ("libgl1-mesa-glx", "libgl1"),
    ],
)
def test_a_name_only_ubuntu_has_becomes_debians(ubuntu: str, debian: str) -> None:
    assert debian_name(ubuntu, BOOKWORM_LIKE) == debian


@pytest.mark.parametrize(
    "name",
    [
        "libcudnn8",  # no counterpart at all (NVIDIA's repository)
        "libfoo3",  # two counterparts: no guess
        "libpython3.10",  # the interpreter's library is never switched
        "ffmpegg",  # not a library name
        "libmysqlclient21",  # the table's target is not in this archive
    ],
)
def test_no_guess_without_exactly_one_counterpart(name: str) -> None:
    assert debian_name(name, BOOKWORM_LIKE) is None
