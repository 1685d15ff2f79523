"""Cog's managed weights for ``ocibuild predict``/``run``: mount each weight set at its target and mark it ready.

A build with cog.yaml ``weights:`` puts the weights beside the image (artifact manifests in its index) and the
image's runner waits for ``<target>/.cog/ready``, which the serving platform writes once it has mounted them,
as ``cog predict`` does locally. Here each set is unpacked once into the store (``weights-ready/<set digest>``,
with ``.cog/ready`` added) and bind-mounted read-only at its target.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocibuild.cogimage import WEIGHT_ARTIFACT_TYPE, WEIGHT_NAME, WEIGHT_SET_DIGEST, WEIGHT_TARGET
from ocibuild.errors import BuildError
from ocibuild.oci.compression import Compression, open_decompressor
from ocibuild.oci.layer import LayerBlob
from ocibuild.oci.store import Store
from ocibuild.oci.tree import remove_tree
from ocibuild.run.extract import apply_layer
from ocibuild.run.spec import BindMount

READY = ".cog/ready"

BlobReader = Callable[[str], "bytes | Path | None"]
"""A blob of the image's index by digest: its bytes, the file holding them, or None when absent."""


@dataclass(frozen=True)
class WeightSet:
    """One managed weight set: its name, where it is mounted and its layers (paths relative to the target)."""

    name: str
    target: str
    set_digest: str
    layers: tuple[LayerBlob, ...]


def weight_sets(index_bytes: bytes, read: BlobReader) -> list[WeightSet]:
    """The managed weight sets an image index lists beside its images (none for a plain image)."""
    index = json.loads(index_bytes)
    out = []
    for entry in index.get("manifests", []):
        if entry.get("artifactType") != WEIGHT_ARTIFACT_TYPE:
            continue
        manifest = json.loads(_bytes(read, entry["digest"]))
        annotations = manifest.get("annotations", {})
        layers = tuple(_layer(read, layer) for layer in manifest.get("layers", []))
        names = (annotations[WEIGHT_NAME], annotations[WEIGHT_TARGET], annotations[WEIGHT_SET_DIGEST])
        out.append(WeightSet(*names, layers))
    return out


def weight_mounts(sets: Sequence[WeightSet], store: Store) -> list[BindMount]:
    """A read-only bind mount per set, of its files plus ``.cog/ready``, unpacked once into the store."""
    return [BindMount(str(_unpacked(weight, store)), weight.target, readonly=True) for weight in sets]


def missing_weights(weights_json: str | None, mounted: Sequence[str]) -> list[str]:
    """Targets ``/src/.cog/weights.json`` names that nothing mounts (the runner would wait for them in vain)."""
    if not weights_json:
        return []
    try:
        entries = json.loads(weights_json).get("weights", [])
    except (ValueError, AttributeError):
        return []
    targets = [str(entry.get("target")) for entry in entries if isinstance(entry, dict)]
    return [target for target in targets if target.rstrip("/") not in {m.rstrip("/") for m in mounted}]


def _bytes(read: BlobReader, digest: str) -> bytes:
    blob = read(digest)
    if blob is None:
        raise BuildError(f"managed weights: blob {digest} is not beside the image")
    data = blob if isinstance(blob, bytes) else Path(blob).read_bytes()
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise BuildError(f"managed weights: blob {digest} does not match its digest")
    return data


def _layer(read: BlobReader, descriptor: dict[str, Any]) -> LayerBlob:
    digest, media_type = descriptor["digest"], descriptor["mediaType"]
    blob = read(digest)
    if blob is None:
        raise BuildError(f"managed weights: layer {digest} is not beside the image")
    if isinstance(blob, bytes):
        raise BuildError(f"managed weights: layer {digest} is not a file")
    compression = Compression.from_media_type(media_type)
    diff_id = digest if compression is Compression.NONE else _diff_id(Path(blob), compression, digest)
    return LayerBlob(diff_id, digest, int(descriptor.get("size", 0)), media_type, Path(blob))


def _diff_id(path: Path, compression: Compression, digest: str) -> str:
    """The uncompressed digest of a compressed layer (a small bundle), after checking the blob against ``digest``."""
    blob = hashlib.sha256()
    with open(path, "rb") as raw:
        while chunk := raw.read(1 << 20):
            blob.update(chunk)
    if "sha256:" + blob.hexdigest() != digest:
        raise BuildError(f"managed weights: layer {digest} does not match its digest")
    content = hashlib.sha256()
    with open(path, "rb") as raw:
        stream = open_decompressor(compression, raw)
        while chunk := stream.read(1 << 20):
            content.update(chunk)
    return "sha256:" + content.hexdigest()


def _unpacked(weight: WeightSet, store: Store) -> Path:
    base = store.root / "weights-ready"
    base.mkdir(parents=True, exist_ok=True)
    target = base / weight.set_digest.split(":", 1)[-1]
    if (target / READY).is_file():
        return target
    work = Path(tempfile.mkdtemp(prefix=".unpack-", dir=base))
    try:
        os.chmod(work, 0o755)
        for layer in weight.layers:
            apply_layer(layer, work)
        (work / ".cog").mkdir(exist_ok=True)
        (work / READY).write_text("ready\n")  # what the serving platform writes once the weights are mounted
        try:
            os.rename(work, target)
        except OSError:
            if not (target / READY).is_file():
                raise
    finally:
        remove_tree(work, ignore_errors=True)
    return target
