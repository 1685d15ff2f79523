"""One tarball that is both an OCI layout and a docker-archive.

It holds ``oci-layout``, ``index.json`` and ``blobs/sha256/*`` (an OCI layout: ``skopeo oci-archive:``,
``ctr import``, ``podman load``) and a ``manifest.json`` whose Config and Layers point into ``blobs/`` (a
docker-archive: ``docker load``, ``skopeo docker-archive:``). Blobs are stored once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from ocibuild.oci.artifact import Artifact
from ocibuild.oci.canonical import canonical_json
from ocibuild.oci.descriptor import Descriptor
from ocibuild.oci.digest import digest_hex
from ocibuild.oci.entries import Entry
from ocibuild.oci.image import REF_NAME_ANNOTATION, Image
from ocibuild.oci.layout import LAYOUT_FILE, iter_blob_sources
from ocibuild.oci.mediatypes import ImageFormat
from ocibuild.oci.tarwriter import write_tar


def write_archive(
    path: Path, image: Image, repo_tags: list[str], source_date_epoch: int = 0, referrers: Sequence[Artifact] = ()
) -> Path:
    """Write the dual tarball for ``image`` to ``path`` (atomically: temp file, then rename).

    ``referrers`` (SBOM, provenance) are listed in its index.json beside the image, as in a layout."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: tarball output is a directory")
    entries: list[Entry] = [Entry.file("oci-layout", LAYOUT_FILE)]
    sources = dict(iter_blob_sources(image))
    for artifact in referrers:
        for digest, data in artifact.blob_sources():
            sources.setdefault(digest, data)
    for digest, source in sources.items():
        name = f"blobs/sha256/{digest_hex(digest)}"
        if isinstance(source, bytes):
            entries.append(Entry.file(name, source))
        else:
            entries.append(Entry.file_from(name, Path(source)))
    refs = [
        Descriptor(
            image.media_type,
            image.digest,
            len(image.manifest_bytes),
            {REF_NAME_ANNOTATION: tag},
            image.platform,
        )
        for tag in repo_tags
    ] or [image.descriptor()]
    refs += [artifact.descriptor() for artifact in referrers]
    index = {"schemaVersion": 2, "mediaType": ImageFormat.OCI.index, "manifests": [r.to_dict() for r in refs]}
    entries.append(Entry.file("index.json", canonical_json(index)))
    docker_manifest = [
        {
            "Config": f"blobs/sha256/{digest_hex(image.config_digest)}",
            "RepoTags": list(repo_tags),
            "Layers": [f"blobs/sha256/{digest_hex(layer.digest)}" for layer in image.layers],
        }
    ]
    entries.append(Entry.file("manifest.json", json.dumps(docker_manifest, separators=(",", ":")).encode()))
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "wb") as out:
            write_tar(entries, out, source_date_epoch)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path
