"""Strict checks of an OCI layout: image-spec schema rules plus ours (digests, sizes, diff_ids, history)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema

from ocibuild.oci.compression import Compression, open_decompressor

DIGEST = {"type": "string", "pattern": "^sha256:[a-f0-9]{64}$"}
MEDIA_TYPE = {
    "type": "string",
    "pattern": r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$",
}
ANNOTATIONS = {"type": "object", "additionalProperties": {"type": "string"}}
DESCRIPTOR = {
    "type": "object",
    "required": ["mediaType", "digest", "size"],
    "properties": {
        "mediaType": MEDIA_TYPE,
        "digest": DIGEST,
        "size": {"type": "integer", "minimum": 0},
        "annotations": ANNOTATIONS,
        "platform": {"type": "object", "required": ["architecture", "os"]},
    },
}
MANIFEST = {
    "type": "object",
    "required": ["schemaVersion", "config", "layers"],
    "properties": {
        "schemaVersion": {"const": 2},
        "mediaType": {"type": "string"},
        "config": DESCRIPTOR,
        "layers": {"type": "array", "minItems": 1, "items": DESCRIPTOR},
        "annotations": ANNOTATIONS,
    },
}
INDEX = {
    "type": "object",
    "required": ["schemaVersion", "manifests"],
    "properties": {"schemaVersion": {"const": 2}, "manifests": {"type": "array", "items": DESCRIPTOR}},
}
CONFIG = {
    "type": "object",
    "required": ["architecture", "os", "rootfs"],
    "properties": {
        "created": {"type": "string", "format": "date-time"},
        "architecture": {"type": "string"},
        "os": {"type": "string"},
        "config": {
            "type": "object",
            "properties": {
                "Env": {"type": "array", "items": {"type": "string", "pattern": "^[^=]+=.*$"}},
                "Cmd": {"type": "array", "items": {"type": "string"}},
                "Entrypoint": {"type": "array", "items": {"type": "string"}},
                "ExposedPorts": {"type": "object", "additionalProperties": {"type": "object", "maxProperties": 0}},
                "Labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "WorkingDir": {"type": "string"},
            },
        },
        "rootfs": {
            "type": "object",
            "required": ["type", "diff_ids"],
            "properties": {"type": {"const": "layers"}, "diff_ids": {"type": "array", "items": DIGEST}},
        },
        "history": {"type": "array", "items": {"type": "object"}},
    },
}


def _blob(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest.split(":", 1)[1]


def _checked_blob(layout: Path, descriptor: dict) -> bytes:
    data = _blob(layout, descriptor["digest"]).read_bytes()
    assert len(data) == descriptor["size"], descriptor
    assert "sha256:" + hashlib.sha256(data).hexdigest() == descriptor["digest"], descriptor
    return data


def check_layout(layout: Path) -> list[dict]:
    """Validate the whole layout; returns the image configs found."""
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    jsonschema.validate(index, INDEX)
    configs = []
    for descriptor in index["manifests"]:
        configs += _check_manifest(layout, descriptor)
    return configs


def _check_manifest(layout: Path, descriptor: dict) -> list[dict]:
    raw = _checked_blob(layout, descriptor)
    doc = json.loads(raw)
    assert raw == json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    if "manifests" in doc:
        jsonschema.validate(doc, INDEX)
        out = []
        for child in doc["manifests"]:
            out += _check_manifest(layout, child)
        return out
    jsonschema.validate(doc, MANIFEST)
    if doc["config"]["mediaType"] == "application/vnd.oci.empty.v1+json":
        assert doc.get("artifactType"), "artifact manifests with an empty config need artifactType"
        return []
    config = json.loads(_checked_blob(layout, doc["config"]))
    jsonschema.validate(config, CONFIG)
    diff_ids = config["rootfs"]["diff_ids"]
    assert len(diff_ids) == len(doc["layers"])
    non_empty = [h for h in config.get("history", []) if not h.get("empty_layer")]
    assert len(non_empty) == len(diff_ids), "history entries must match the layers"
    for layer, diff_id in zip(doc["layers"], diff_ids, strict=True):
        blob = _blob(layout, layer["digest"])
        _checked_blob(layout, layer)
        with open(blob, "rb") as f:
            reader = open_decompressor(Compression.from_media_type(layer["mediaType"]), f)
            h = hashlib.sha256()
            while chunk := reader.read(1 << 20):
                h.update(chunk)
        assert "sha256:" + h.hexdigest() == diff_id
    return [config]
