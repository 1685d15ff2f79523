"""Incremental builds through the library API: a no-op rebuild writes nothing; one changed line of predict.py
changes exactly one layer (the code layer) plus the config and the manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ocibuild.cog.build import BuildOptions, build_project
from ocibuild.oci import Store
from tests.reproducible.conftest import copy_project


def _blob_files(root: Path) -> set[str]:
    return {p.name for p in (root / "blobs" / "sha256").iterdir()}


def _layer_names(image) -> list[str]:
    return [h.get("comment", "") for h in json.loads(image.config_bytes)["history"] if not h.get("empty_layer")]


@pytest.mark.integration
def test_noop_rebuild_writes_nothing_and_one_changed_line_rebuilds_only_the_code_layer(warm_hello, tmp_path: Path):
    warm_store, warm_project, _ = warm_hello
    root = tmp_path / "store"
    shutil.copytree(warm_store, root, copy_function=lambda s, d: Path(d).hardlink_to(s))
    project = copy_project(warm_project, tmp_path / "project")

    first = build_project(project / "cog.yaml", BuildOptions(store=Store(root), offline=True))

    store = Store(root)
    blobs_before = _blob_files(root)
    again = build_project(project / "cog.yaml", BuildOptions(store=store, offline=True))
    assert again.digest == first.digest
    assert store.stats.blobs_written == 0 and store.stats.key_misses == 0, store.stats
    assert _blob_files(root) == blobs_before, "a no-op rebuild wrote blobs"

    predict = project / "predict.py"
    predict.write_text(predict.read_text().replace('self.greeting = "hello"', 'self.greeting = "hi"'))
    store = Store(root)
    changed = build_project(project / "cog.yaml", BuildOptions(store=store, offline=True)).target
    before = first.target
    assert len(changed.layers) == len(before.layers)
    differing = [i for i, (a, b) in enumerate(zip(before.layers, changed.layers, strict=True)) if a.digest != b.digest]
    assert [_layer_names(changed)[i] for i in differing] == ["code"], differing
    assert changed.config_bytes != before.config_bytes and changed.digest != before.digest
    assert store.stats.blobs_written == 1, store.stats  # the new code layer, nothing else
    assert store.stats.key_misses == 1, store.stats  # and the store was asked for it once
    assert _blob_files(root) - blobs_before == {changed.layers[differing[0]].digest.split(":", 1)[1]}
