"""Media types of the OCI image spec and their Docker schema2 counterparts."""

from __future__ import annotations

import enum

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"

MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})


class ImageFormat(str, enum.Enum):
    """Which family of media types an image is written with."""

    OCI = "oci"
    DOCKER = "docker"

    @property
    def manifest(self) -> str:
        return OCI_MANIFEST if self is ImageFormat.OCI else DOCKER_MANIFEST

    @property
    def index(self) -> str:
        return OCI_INDEX if self is ImageFormat.OCI else DOCKER_MANIFEST_LIST

    @property
    def config(self) -> str:
        return OCI_CONFIG if self is ImageFormat.OCI else DOCKER_CONFIG


def convert_layer_type(media_type: str, fmt: ImageFormat) -> str:
    """The layer media type for ``fmt`` (Docker schema2 has no zstd type and uses its own names)."""
    to_docker = {OCI_LAYER_GZIP: DOCKER_LAYER_GZIP, OCI_LAYER: DOCKER_LAYER}
    to_oci = {v: k for k, v in to_docker.items()}
    if fmt is ImageFormat.DOCKER:
        if media_type == OCI_LAYER_ZSTD:
            raise ValueError("zstd layers have no Docker schema2 media type; use gzip with --format docker")
        return to_docker.get(media_type, media_type)
    return to_oci.get(media_type, media_type)
