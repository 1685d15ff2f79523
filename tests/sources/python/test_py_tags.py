"""Choosing the one wheel that fits the image's Python and platform."""

from __future__ import annotations

import pytest

from ocibuild.sources.python import PythonTarget
from ocibuild.sources.python.sdist import runs_on_target
from ocibuild.sources.python.tags import best_wheel, wheel_rank, wheel_tags

BOOKWORM = PythonTarget()
TRIXIE = PythonTarget.for_python("3.13", "2.41")
ARM = PythonTarget.for_python("3.11", "2.36", "linux/arm64")


def test_target_paths_and_uv_platform() -> None:
    assert BOOKWORM.uv_platform == "x86_64-manylinux_2_36"
    assert ARM.uv_platform == "aarch64-manylinux_2_36"
    assert TRIXIE.site_packages == "/usr/local/lib/python3.13/dist-packages"
    assert TRIXIE.interpreter == "/usr/bin/python3.13"
    assert str(TRIXIE.scripts_dir) == "/usr/local/bin"
    assert TRIXIE.uv_platform == "x86_64-manylinux_2_40"  # uv's newest; glibc 2.41 wheels still fit (below)
    assert wheel_rank("np-2-cp313-cp313-manylinux_2_41_x86_64.whl", TRIXIE) == 0


def test_compressed_tag_sets_expand() -> None:
    tags = wheel_tags("cn-3.5-cp311-cp311-manylinux1_x86_64.manylinux_2_28_x86_64.whl")
    assert tags == {("cp311", "cp311", "manylinux1_x86_64"), ("cp311", "cp311", "manylinux_2_28_x86_64")}


def test_the_most_specific_wheel_wins() -> None:
    files = [
        "cn-3.5-py3-none-any.whl",
        "cn-3.5-cp37-abi3-manylinux_2_28_x86_64.whl",
        "cn-3.5-cp311-cp311-manylinux_2_28_x86_64.whl",
        "cn-3.5-cp311-cp311-musllinux_1_2_x86_64.whl",
    ]
    assert best_wheel(files, BOOKWORM) == "cn-3.5-cp311-cp311-manylinux_2_28_x86_64.whl"
    assert best_wheel(files, TRIXIE) == "cn-3.5-cp37-abi3-manylinux_2_28_x86_64.whl"
    assert best_wheel(files, ARM) == "cn-3.5-py3-none-any.whl"


@pytest.mark.parametrize(
    ("filename", "fits"),
    [
        ("np-2-cp311-cp311-manylinux_2_36_x86_64.whl", True),
        ("np-2-cp311-cp311-manylinux_2_39_x86_64.whl", False),  # needs a newer glibc than bookworm's
        ("np-2-cp311-cp311-manylinux2014_x86_64.whl", True),
        ("np-2-cp312-cp312-manylinux_2_28_x86_64.whl", False),
        ("np-2-cp311-cp311-linux_x86_64.whl", False),
        ("np-2-cp311-cp311-win_amd64.whl", False),
        ("np-2-1-py2.py3-none-any.whl", True),  # with a build tag
    ],
)
def test_fit_for_bookworm(filename: str, fits: bool) -> None:
    assert (wheel_rank(filename, BOOKWORM) is not None) is fits


def test_locally_built_wheels_run_only_on_the_same_cpu() -> None:
    assert runs_on_target("x-1-py3-none-any.whl", ARM)
    assert not runs_on_target("x-1-cp311-cp311-linux_x86_64.whl", ARM)
    assert not runs_on_target("x-1-cp312-cp312-linux_x86_64.whl", BOOKWORM)
