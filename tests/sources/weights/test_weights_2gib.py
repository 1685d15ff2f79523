"""A project with a 2 GiB weights file, end to end: separate layer, intact after ``umoci unpack``, not re-read."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ocibuild.oci import ImageConfig, Store, build_image, write_layout
from ocibuild.sources.project.code import code_layer
from ocibuild.sources.project.fingerprint import ReadStats
from ocibuild.sources.project.weights import find_weights, project_weight_files, weights_layers

from .conftest import age, make_project

SIZE = 2 << 30

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("umoci") is None, reason="needs umoci"),
]


def make_weights(path: Path) -> str:
    """A 2 GiB file (mostly a hole, with random bytes at both ends); returns its sha256."""
    head, tail = os.urandom(1 << 20), os.urandom(1 << 20)
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(SIZE - len(tail))
        f.seek(SIZE - len(tail))
        f.write(tail)
    h = hashlib.sha256(head)
    zeros = bytes(8 << 20)
    remaining = SIZE - len(head) - len(tail)
    while remaining:
        h.update(zeros[: min(len(zeros), remaining)])
        remaining -= min(len(zeros), remaining)
    h.update(tail)
    return "sha256:" + h.hexdigest()


def build(project: Path, store: Store, stats: ReadStats):
    found = find_weights(project)
    code = code_layer(project, store, 0, exclude_paths=found)
    weights = weights_layers(project_weight_files(project, found), store, stats=stats)
    return code, weights


def test_2gib_weights_file(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", {})
    (project / "weights").mkdir()
    expected = make_weights(project / "weights" / "model.safetensors")
    age(project)
    store = Store(tmp_path / "store")

    stats = ReadStats()
    code, weights = build(project, store, stats)
    assert [name for name, _ in weights] == ["src/weights/model.safetensors"]
    layer = weights[0][1]
    assert layer.media_type == "application/vnd.oci.image.layer.v1.tar"
    assert SIZE < layer.size < SIZE + 16384 and layer.digest == layer.diff_id
    assert stats.files_hashed == 1 and stats.bytes_read == SIZE  # one read of the weights, hashed once

    image = build_image([code, layer], ImageConfig())
    layout = write_layout(tmp_path / "layout", image, ["latest"])
    bundle = tmp_path / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{layout}:latest", str(bundle)], check=True, capture_output=True
    )
    unpacked = bundle / "rootfs" / "src" / "weights" / "model.safetensors"
    h = hashlib.sha256()
    with open(unpacked, "rb") as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
    assert "sha256:" + h.hexdigest() == expected
    assert (bundle / "rootfs" / "src" / "predict.py").is_file()
    assert not (bundle / "rootfs" / "src" / "weights" / "model.safetensors").is_symlink()
    shutil.rmtree(bundle)

    # Edit predict.py and rebuild: the weights file is not opened, its layer is the same.
    (project / "predict.py").write_text("from cog import BasePredictor  # edited\n")
    age(project / "predict.py")
    stats = ReadStats()
    code2, weights2 = build(project, store, stats)
    assert code2.digest != code.digest
    assert weights2 == weights
    assert (stats.files_hashed, stats.bytes_read, stats.layers_written) == (0, 0, 0)
    assert stats.layers_reused == 1
    for big in ("store", "project", "layout"):  # 4+ GiB: do not leave it to pytest's tmp retention
        shutil.rmtree(tmp_path / big)
