"""OCI 1.1 artifacts that refer to an image: a manifest with ``artifactType``, an empty config and a ``subject``.

SBOMs, provenance and signatures attach to an image this way without changing its digest. A registry lists them
through the referrers API (``GET /v2/<repo>/referrers/<digest>``) or, when it lacks that API, through the
fallback tag ``sha256-<hex>`` that points at an index of their descriptors (distribution-spec v1.1).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ocibuild.oci.canonical import canonical_json
from ocibuild.oci.descriptor import Descriptor
from ocibuild.oci.digest import digest_hex, sha256_digest
from ocibuild.oci.image import BlobSource
from ocibuild.oci.mediatypes import OCI_EMPTY, OCI_INDEX, OCI_MANIFEST

EMPTY_CONFIG = b"{}"
EMPTY_DESCRIPTOR = Descriptor(OCI_EMPTY, sha256_digest(EMPTY_CONFIG), len(EMPTY_CONFIG))


@dataclass(frozen=True)
class Artifact:
    """One artifact manifest as exact bytes, and the blobs it names (the empty config and its documents)."""

    manifest_bytes: bytes
    blobs: tuple[tuple[str, bytes], ...]
    artifact_type: str

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest_bytes)

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads(self.manifest_bytes)

    @property
    def subject(self) -> str:
        return self.manifest["subject"]["digest"]

    def descriptor(self) -> Descriptor:
        """How a referrers list (or a layout's index.json) names this artifact."""
        return Descriptor(
            OCI_MANIFEST,
            self.digest,
            len(self.manifest_bytes),
            dict(self.manifest.get("annotations") or {}),
            artifact_type=self.artifact_type,
        )

    def blob_sources(self) -> list[BlobSource]:
        """Every blob, the manifest itself first."""
        return [(self.digest, self.manifest_bytes), *self.blobs]


def build_artifact(
    artifact_type: str,
    subject: Descriptor,
    documents: Sequence[tuple[str, bytes]],
    annotations: dict[str, str] | None = None,
) -> Artifact:
    """An artifact manifest for ``documents`` (media type, bytes) that refers to ``subject``."""
    layers = [Descriptor(media_type, sha256_digest(data), len(data)) for media_type, data in documents]
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": EMPTY_DESCRIPTOR.to_dict(),
        "layers": [layer.to_dict() for layer in layers],
        "subject": Descriptor(subject.media_type, subject.digest, subject.size).to_dict(),
    }
    if annotations:
        doc["annotations"] = dict(annotations)
    blobs = {EMPTY_DESCRIPTOR.digest: EMPTY_CONFIG}
    blobs.update((layer.digest, data) for layer, (_, data) in zip(layers, documents, strict=True))
    return Artifact(canonical_json(doc), tuple(blobs.items()), artifact_type)


def referrers_tag(subject_digest: str) -> str:
    """The fallback tag that lists the referrers of ``subject_digest``: ``sha256-<hex>``."""
    return f"sha256-{digest_hex(subject_digest)}"


def referrers_index(descriptors: Sequence[Descriptor]) -> bytes:
    """The index a referrers list is made of (the API's answer and the fallback tag's content)."""
    manifests = [d.to_dict() for d in descriptors]
    return canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
