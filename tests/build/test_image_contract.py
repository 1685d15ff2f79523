"""A built image carries Cog's contract, read back from the OCI layout (issue 3), and managed weights (issue 8)."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from ocibuild.cog.build import BuildOptions, build_project
from ocibuild.oci import Store, read_layout, write_layout
from ocibuild.oci.compression import Compression, open_decompressor
from ocibuild.oci.image import Image, Index
from tests.helpers import REPO

pytestmark = pytest.mark.integration


def layer_files(layer) -> dict[str, bytes]:
    with open(layer.path, "rb") as f:
        data = open_decompressor(Compression.from_media_type(layer.media_type), f).read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isreg()}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    dest = tmp_path / "proj"
    shutil.copytree(REPO / "examples" / "hello-world", dest, ignore=shutil.ignore_patterns(".ocibuild"))
    return dest


def build(project: Path, store_root: Path) -> Image | Index:
    result = build_project(project / "cog.yaml", BuildOptions(store=Store(store_root), source_date_epoch=0))
    layout = write_layout(project / "layout", result.target, ["latest"])
    return read_layout(layout)


def test_config_carries_the_cog_contract(project: Path, shared_cache: Path):
    (project / "cog.yaml").write_text(
        'build:\n  python_version: "3.11"\n  gpu: true\nrun: "predict.py:Predictor"\nenvironment:\n  - HELLO=world\n'
    )
    image = build(project, shared_cache)
    assert isinstance(image, Image)
    config = image.config["config"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert config["WorkingDir"] == "/src"
    assert config["Cmd"] == ["python", "-m", "cog.server.http"]
    assert config["ExposedPorts"] == {"5000/tcp": {}}
    assert env["COG_PREDICT_TYPE_STUB"] == "predict.py:Predictor"
    assert env["PYTHONUNBUFFERED"] == "1" and env["HELLO"] == "world"
    assert env["NVIDIA_VISIBLE_DEVICES"] == "all" and env["NVIDIA_DRIVER_CAPABILITIES"] == "all"  # as Cog sets it
    labels = config["Labels"]
    assert set(labels) >= {
        "run.cog.version",
        "run.cog.config",
        "run.cog.openapi_schema",
        "run.cog.pip_freeze",
        "run.cog.has_init",
    }
    assert json.loads(labels["run.cog.config"])["build"]["gpu"] is True
    assert "cog==" in labels["run.cog.pip_freeze"]
    schema = json.loads(labels["run.cog.openapi_schema"])
    code = layer_files(image.layers[-1])
    assert json.loads(code["src/.cog/openapi_schema.json"]) == schema
    assert "src/predict.py" in code and not any(name.startswith("src/.ocibuild") for name in code)
    history = image.config["history"]
    assert len([h for h in history if not h.get("empty_layer")]) == len(image.layers)


def test_managed_weights_go_beside_the_image(project: Path, shared_cache: Path):
    (project / "w").mkdir()
    (project / "w" / "model.bin").write_bytes(bytes(range(256)) * 4096)
    (project / "cog.yaml").write_text(
        'build:\n  python_version: "3.11"\nrun: "predict.py:Predictor"\nmodel: registry.example.com/me/model\n'
        "weights:\n  - name: base\n    target: /src/weights\n    source:\n      uri: w\n"
    )
    index = build(project, shared_cache)
    assert isinstance(index, Index)
    raw = json.loads(index.index_bytes)
    platforms = [m["platform"] for m in raw["manifests"]]
    assert {"os": "unknown", "architecture": "unknown"} in platforms
    artifact = next(m for m in raw["manifests"] if m["platform"]["os"] == "unknown")
    assert artifact["annotations"]["run.cog.weight.name"] == "base"
    image = index.images[0]
    code = layer_files(image.layers[-1])
    weights_json = json.loads(code["src/.cog/weights.json"])
    assert weights_json["weights"][0]["target"] == "/src/weights"
    assert "src/w/model.bin" not in code
