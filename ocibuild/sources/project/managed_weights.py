"""Cog's managed weights (draft weights spec): one OCI artifact manifest per ``weights:`` entry.

Each weight set becomes a manifest with ``artifactType: application/vnd.cog.weight.v1``, a config blob that
indexes every file (path, layer, size, digest) and layers packed by ``weights.pack_weights`` with paths
relative to the target. The index beside the image lists each manifest with platform ``unknown/unknown`` and
the ``run.cog.weight.*`` annotations; the image carries ``/src/.cog/weights.json``. Nothing here holds a
timestamp: identical weights give identical manifests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from ocibuild.cogimage import WEIGHT_ARTIFACT_TYPE, WEIGHT_NAME, WEIGHT_SET_DIGEST, WEIGHT_TARGET
from ocibuild.oci.canonical import canonical_json
from ocibuild.oci.compression import Compression
from ocibuild.oci.descriptor import Descriptor, Platform
from ocibuild.oci.digest import digest_hex, sha256_digest
from ocibuild.oci.image import BlobSource
from ocibuild.oci.mediatypes import OCI_MANIFEST
from ocibuild.oci.store import Store
from ocibuild.sources.project.fingerprint import ReadStats
from ocibuild.sources.project.weights import PackedLayer, WeightSet, pack_weights

CONFIG_MEDIA_TYPE = "application/vnd.cog.weight.config.v1+json"
SIZE_UNCOMPRESSED = "run.cog.weight.size.uncompressed"
UNKNOWN_PLATFORM = Platform("unknown", "unknown")


def set_digest(files: Sequence[tuple[str, str]]) -> str:
    """The weight set digest (spec §2.4) of (path, sha256 digest) pairs: ``sha256sum`` lines sorted by path."""
    lines = [f"{digest_hex(digest)}  {path}" for path, digest in sorted(files)]
    return "sha256:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()


def managed_weights_artifacts(
    weight_sets: Sequence[WeightSet],
    store: Store,
    *,
    compression: Compression | str = Compression.NONE,
    stats: ReadStats | None = None,
) -> tuple[list[Descriptor], list[BlobSource], bytes]:
    """(index descriptors, every blob they need, ``weights.json`` bytes) for ``weight_sets``.

    Pass them as ``build_index([image], artifacts=descriptors, artifact_blobs=blobs)``, and the bytes as the
    code layer's extra file ``.cog/weights.json``.
    """
    descriptors: list[Descriptor] = []
    blobs: dict[str, bytes | Path] = {}
    summary = []
    for weight in weight_sets:
        packed = pack_weights(weight.files, store, root=weight.target, compression=compression, stats=stats)
        files = sorted((f.path, f.digest, f.size, p.layer.digest) for p in packed for f in p.files)
        digest = set_digest([(path, file_digest) for path, file_digest, _, _ in files])
        config = canonical_json(
            {
                "name": weight.name,
                "target": weight.target,
                "setDigest": digest,
                "files": [
                    {"path": path, "layer": layer, "size": size, "digest": file_digest}
                    for path, file_digest, size, layer in files
                ],
            }
        )
        manifest = _manifest(weight, digest, config, packed)
        blobs[sha256_digest(config)] = config
        blobs[sha256_digest(manifest)] = manifest
        blobs.update((p.layer.digest, p.layer.path) for p in packed)
        descriptors.append(
            Descriptor(
                OCI_MANIFEST,
                sha256_digest(manifest),
                len(manifest),
                annotations={
                    WEIGHT_NAME: weight.name,
                    WEIGHT_SET_DIGEST: digest,
                    SIZE_UNCOMPRESSED: str(sum(size for _, _, size, _ in files)),
                },
                platform=UNKNOWN_PLATFORM,
                artifact_type=WEIGHT_ARTIFACT_TYPE,
            )
        )
        summary.append({"name": weight.name, "target": weight.target, "setDigest": digest})
    weights_json = canonical_json({"weights": summary})
    return descriptors, list(blobs.items()), weights_json


def _manifest(weight: WeightSet, digest: str, config: bytes, packed: list[PackedLayer]) -> bytes:
    layers = [
        Descriptor(
            p.layer.media_type,
            p.layer.digest,
            p.layer.size,
            annotations={SIZE_UNCOMPRESSED: str(sum(f.size for f in p.files))},
        ).to_dict()
        for p in packed
    ]
    return canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": WEIGHT_ARTIFACT_TYPE,
            "config": Descriptor(CONFIG_MEDIA_TYPE, sha256_digest(config), len(config)).to_dict(),
            "layers": layers,
            "annotations": {WEIGHT_NAME: weight.name, WEIGHT_TARGET: weight.target, WEIGHT_SET_DIGEST: digest},
        }
    )
