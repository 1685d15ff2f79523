"""Managed weights locally: ``ocibuild predict`` mounts each weight set at its target and marks it ready, as
``cog predict`` does; without them a registry image is a one-line error, and ``--tarball`` names the cause."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ocibuild.errors import BuildError
from ocibuild.oci import Entry, LayerBlob, Store, build_index, write_layer
from ocibuild.run import predict
from ocibuild.run.weights import missing_weights, weight_mounts, weight_sets
from ocibuild.sources.project.managed_weights import managed_weights_artifacts
from ocibuild.sources.project.weights import WeightSource, WeightSpec, resolve_weight_specs
from tests.run.conftest import image_of
from tests.sources.weights.conftest import make_project

REPO = Path(__file__).resolve().parents[2]
BIG = hashlib.sha256(b"big").digest() * ((65 << 20) // 32)  # a layer of its own (past 64 MiB)
PREDICT = """
import os
from cog import BasePredictor


class Predictor(BasePredictor):
    def setup(self) -> None:
        self.size = os.path.getsize("/src/weights/model.bin")

    def predict(self) -> str:
        return f"weights {self.size} bytes, ready={os.path.exists('/src/weights/.cog/ready')}"
"""
COG_YAML = """model: registry.example.com/me/model
build:
  python_version: "3.11"
run: "predict.py:Predictor"
weights:
  - name: base
    target: /src/weights
    source:
      uri: w
"""


def index_with_weights(project: Path, store: Store, base: LayerBlob):
    specs = [
        WeightSpec("base-model", "/src/weights", (WeightSource("weights"),)),
        WeightSpec("vae", "/src/vae", (WeightSource("file://vae"),)),
    ]
    sets = resolve_weight_specs(specs, project, store)[0]
    descriptors, blobs, _ = managed_weights_artifacts(sets, store)
    return build_index([image_of([base])], artifacts=descriptors, artifact_blobs=blobs)


def test_each_set_is_unpacked_once_with_a_ready_marker(tmp_path: Path, base_layer: LayerBlob, store: Store) -> None:
    files = {"weights/model.safetensors": BIG, "weights/config.json": b'{"a":1}', "vae/vae.bin": b"vae"}
    index = index_with_weights(make_project(tmp_path / "project", files), store, base_layer)
    sets = weight_sets(index.index_bytes, dict(index.artifact_blobs).get)
    assert [(s.name, s.target) for s in sets] == [("base-model", "/src/weights"), ("vae", "/src/vae")]
    mounts = weight_mounts(sets, store)
    assert [(m.destination, m.readonly) for m in mounts] == [("/src/weights", True), ("/src/vae", True)]
    weights = Path(mounts[0].source)
    assert (weights / "model.safetensors").stat().st_size == len(BIG)
    assert (weights / "config.json").read_bytes() == b'{"a":1}'
    assert (weights / ".cog" / "ready").is_file() and (Path(mounts[1].source) / ".cog" / "ready").is_file()
    assert weight_mounts(sets, store) == mounts


def test_a_tampered_weight_blob_is_refused(tmp_path: Path, base_layer: LayerBlob, store: Store) -> None:
    index = index_with_weights(make_project(tmp_path / "p", {"weights/a.bin": b"a", "vae/v": b"v"}), store, base_layer)
    blobs = dict(index.artifact_blobs)
    manifest = next(json.loads(v) for v in blobs.values() if isinstance(v, bytes) and b'"layers"' in v)
    layer = manifest["layers"][0]["digest"]
    tampered = tmp_path / "tampered"
    tampered.write_bytes(b"not the layer")
    blobs[layer] = tampered
    with pytest.raises(BuildError, match="does not match its digest"):
        weight_mounts(weight_sets(index.index_bytes, blobs.get), store)


def test_missing_weights_are_the_targets_nothing_mounts() -> None:
    listed = json.dumps({"weights": [{"name": "a", "target": "/src/a"}, {"name": "b", "target": "/src/b"}]})
    assert missing_weights(listed, ["/src/a/"]) == ["/src/b"]
    assert missing_weights(None, []) == []


def test_an_image_whose_weights_are_not_beside_it_fails_before_starting(store: Store, base_layer: LayerBlob) -> None:
    weights_json = json.dumps({"weights": [{"name": "base", "target": "/src/weights"}]})
    code = write_layer([Entry.file("src/.cog/weights.json", weights_json.encode())], store)
    image = image_of([base_layer, code], working_dir="/src")
    with pytest.raises(BuildError, match=r"managed weights \(/src/weights\) are not beside it"):
        predict(image, store, [], None, None)
    assert not list((store.root / "tmp").iterdir())


def ocibuild(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ocibuild", *args, "--cache-dir", str(cache)]
    env = {**os.environ, "COG_WEIGHTS_READY_TIMEOUT": "20"}
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, cwd=REPO, env=env)


@pytest.mark.integration
def test_predict_on_a_project_with_weights_mounts_them(tmp_path: Path, shared_cache: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(REPO / "examples" / "hello-world", project)
    (project / "w").mkdir()
    (project / "w" / "model.bin").write_bytes(b"\x01" * 300_000)
    (project / "cog.yaml").write_text(COG_YAML)
    (project / "predict.py").write_text(PREDICT)
    from_project = ocibuild("predict", str(project), cache=shared_cache)
    assert from_project.returncode == 0, from_project.stderr
    assert from_project.stdout == "weights 300000 bytes, ready=True\n"
    assert "managed weights: base at /src/weights (mounted, ready)" in from_project.stderr
    built = ocibuild("build", str(project), "-o", str(tmp_path / "layout"), cache=shared_cache)
    assert built.returncode == 0, built.stderr
    from_layout = ocibuild("predict", str(tmp_path / "layout"), cache=shared_cache)
    assert from_layout.stdout == "weights 300000 bytes, ready=True\n", from_layout.stderr
    tarball = ocibuild("build", str(project), "--tarball", str(tmp_path / "image.tar"), cache=shared_cache)
    assert tarball.returncode == 2
    assert tarball.stderr.strip().splitlines() == [
        "error: --tarball: cog.yaml's weights: are managed weights, OCI artifacts beside the image in an index, "
        "and a docker-archive holds one image and nothing beside it; use the OCI layout (-o) or --push"
    ]
