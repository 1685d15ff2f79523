"""Random trees (links, long and unicode names, empty dirs) round-trip through umoci unpack unchanged."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from ocibuild.oci import ImageConfig, Store, build_image, write_layer, write_layout
from tests.helpers import umoci_unpack
from tests.oci.test_tarwriter import trees

pytestmark = pytest.mark.integration


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees())
def test_random_trees_round_trip_through_umoci(entries):
    work = Path(tempfile.mkdtemp(prefix="ocibuild-umoci-"))
    try:
        image = build_image([write_layer(entries, Store(work / "store"))], ImageConfig())
        rootfs = umoci_unpack(write_layout(work / "layout", image, ["latest"]), "latest", work / "bundle")
        for entry in entries:
            path = rootfs / entry.path
            st = os.lstat(path)
            if entry.kind.value == "file":
                assert path.read_bytes() == entry.data and stat.S_IMODE(st.st_mode) == entry.mode, entry.path
            elif entry.kind.value == "dir":
                assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == entry.mode, entry.path
            elif entry.kind.value == "symlink":
                assert os.readlink(path) == entry.link, entry.path
            else:
                assert os.path.samefile(path, rootfs / entry.link), entry.path
    finally:
        shutil.rmtree(work, ignore_errors=True)
