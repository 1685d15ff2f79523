"""Cog's managed-weights format: weight manifests in an OCI index beside the image."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ocibuild.oci import ImageConfig, Platform, Store, build_image, build_index, write_layout
from ocibuild.oci.layout import read_blob
from ocibuild.sources.project.code import code_layer
from ocibuild.sources.project.fingerprint import ReadStats
from ocibuild.sources.project.managed_weights import managed_weights_artifacts, set_digest
from ocibuild.sources.project.weights import WeightSource, WeightSpec, resolve_weight_specs

from .conftest import make_project

BIG = hashlib.sha256(b"big").digest() * ((65 << 20) // 32)  # past the 64 MiB single-file threshold


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(
        tmp_path / "project",
        {"weights/model.safetensors": BIG, "weights/config.json": b'{"a":1}', "vae/vae.bin": b"vae"},
    )


@pytest.fixture
def weight_sets(project: Path, store: Store):
    specs = [
        WeightSpec("base-model", "/src/weights", (WeightSource("weights"),)),
        WeightSpec("vae", "/src/vae", (WeightSource("file://vae"),)),
    ]
    return resolve_weight_specs(specs, project, store)[0]


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_weight_manifest_follows_the_draft_spec(weight_sets, store: Store) -> None:
    descriptors, blobs, _ = managed_weights_artifacts(weight_sets, store)
    blob_map = dict(blobs)
    manifest = json.loads(blob_map[descriptors[0].digest])
    expected_set = set_digest([("config.json", sha(b'{"a":1}')), ("model.safetensors", sha(BIG))])
    assert manifest["artifactType"] == "application/vnd.cog.weight.v1"
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["mediaType"] == "application/vnd.cog.weight.config.v1+json"
    assert manifest["annotations"] == {
        "run.cog.weight.name": "base-model",
        "run.cog.weight.target": "/src/weights",
        "run.cog.weight.set-digest": expected_set,
    }
    big, bundle = manifest["layers"]
    assert big["mediaType"] == "application/vnd.oci.image.layer.v1.tar"
    assert big["annotations"] == {"run.cog.weight.size.uncompressed": str(len(BIG))}
    assert bundle["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    config = json.loads(blob_map[manifest["config"]["digest"]])
    assert config == {
        "name": "base-model",
        "target": "/src/weights",
        "setDigest": expected_set,
        "files": [
            {"path": "config.json", "layer": bundle["digest"], "size": 7, "digest": sha(b'{"a":1}')},
            {"path": "model.safetensors", "layer": big["digest"], "size": len(BIG), "digest": sha(BIG)},
        ],
    }


def test_set_digest_is_sha256sum_output_sorted_by_path() -> None:
    lines = f"{hashlib.sha256(b'b').hexdigest()}  a/b.bin\n{hashlib.sha256(b'z').hexdigest()}  z.json"
    assert set_digest([("z.json", sha(b"z")), ("a/b.bin", sha(b"b"))]) == sha(lines.encode())


def test_index_descriptors_and_weights_json(weight_sets, store: Store) -> None:
    descriptors, _, weights_json = managed_weights_artifacts(weight_sets, store)
    first = descriptors[0].to_dict()
    assert first["platform"] == {"os": "unknown", "architecture": "unknown"}
    assert first["artifactType"] == "application/vnd.cog.weight.v1"
    assert first["annotations"]["run.cog.weight.name"] == "base-model"
    assert first["annotations"]["run.cog.weight.size.uncompressed"] == str(len(BIG) + 7)
    assert "run.cog.weight.target" not in first["annotations"]
    set_digests = [d.annotations["run.cog.weight.set-digest"] for d in descriptors]
    assert json.loads(weights_json) == {
        "weights": [
            {"name": "base-model", "target": "/src/weights", "setDigest": set_digests[0]},
            {"name": "vae", "target": "/src/vae", "setDigest": set_digests[1]},
        ]
    }


def test_artifacts_are_deterministic_and_rebuilt_without_reading(weight_sets, store: Store) -> None:
    first = managed_weights_artifacts(weight_sets, store)
    stats = ReadStats()
    again = managed_weights_artifacts(weight_sets, store, stats=stats)
    assert again == first
    assert stats.bytes_read == 0 and stats.layers_reused == 3


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("skopeo") is None, reason="needs skopeo")
def test_index_in_an_oci_layout_lists_the_weight_manifests(
    project: Path, weight_sets, store: Store, tmp_path: Path
) -> None:
    descriptors, blobs, weights_json = managed_weights_artifacts(weight_sets, store)
    exclude = [p for s in weight_sets for p in s.project_paths]
    code = code_layer(project, store, 0, exclude_paths=exclude, extra_files={".cog/weights.json": weights_json})
    image = build_image([code], ImageConfig(platform=Platform("linux", "amd64")))
    index = build_index([image], artifacts=descriptors, artifact_blobs=blobs)
    layout = write_layout(tmp_path / "layout", index, ["latest"])

    raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{layout}:latest"], check=True, capture_output=True).stdout
    listed = json.loads(raw)
    assert listed["mediaType"] == "application/vnd.oci.image.index.v1+json"
    image_entry, *weights = listed["manifests"]
    assert image_entry["platform"] == {"architecture": "amd64", "os": "linux"}
    assert [w["annotations"]["run.cog.weight.name"] for w in weights] == ["base-model", "vae"]
    for entry in weights:
        assert entry["platform"] == {"architecture": "unknown", "os": "unknown"}
        assert set(entry["annotations"]) == {
            "run.cog.weight.name",
            "run.cog.weight.set-digest",
            "run.cog.weight.size.uncompressed",
        }
        manifest = json.loads(read_blob(layout, entry["digest"]))
        # image-spec: artifactType is required when config is the empty descriptor; we always set it
        assert manifest["artifactType"] == entry["artifactType"] == "application/vnd.cog.weight.v1"
        for descriptor in [manifest["config"], *manifest["layers"]]:
            assert (layout / "blobs" / "sha256" / descriptor["digest"].split(":")[1]).stat().st_size == descriptor[
                "size"
            ]
