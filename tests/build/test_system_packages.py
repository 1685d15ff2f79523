"""cog.yaml system_packages through a whole build: their own layer, pinned per platform in ocibuild.lock."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ocibuild.cog.build import BuildOptions, build_project
from ocibuild.oci import Platform, Store
from tests.build.test_image_contract import layer_files
from tests.helpers import REPO

pytestmark = pytest.mark.integration


def test_system_packages_are_one_layer_and_pinned_for_every_platform(tmp_path: Path, fresh_store: Path):
    project = tmp_path / "proj"
    shutil.copytree(REPO / "examples" / "hello-world", project, ignore=shutil.ignore_patterns(".ocibuild", "*.lock"))
    (project / "cog.yaml").write_text(
        'build:\n  python_version: "3.11"\n  system_packages: [jq]\nrun: "predict.py:Predictor"\n'
    )
    platforms = (Platform("linux", "amd64"), Platform("linux", "arm64"))
    options = BuildOptions(store=Store(fresh_store), source_date_epoch=0, platforms=platforms)
    first = build_project(project / "cog.yaml", options)
    lock = json.loads((project / "ocibuild.lock").read_text())
    assert set(lock["debian"]) == {"linux/amd64", "linux/arm64"}
    amd64 = first.target.images[0]
    system = layer_files(amd64.layers[1])
    assert "usr/bin/jq" in system and not any(name.startswith("usr/bin/python") for name in system)
    second = build_project(project / "cog.yaml", BuildOptions(store=Store(fresh_store), source_date_epoch=0,
                                                              platforms=platforms, offline=True))  # fmt: skip
    assert second.digest == first.digest
