"""Images and indexes as exact bytes: config JSON, manifest JSON and index JSON with their digests.

Modelled on go-containerregistry's v1: an ``Image`` is a manifest, a config and its layers; an ``Index``
points at several manifests (platforms, or artifacts beside an image).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocibuild.oci.canonical import canonical_json, rfc3339
from ocibuild.oci.descriptor import Descriptor, Platform
from ocibuild.oci.digest import sha256_digest
from ocibuild.oci.layer import LayerBlob
from ocibuild.oci.mediatypes import ImageFormat

BlobSource = tuple[str, "bytes | Path"]
"""A blob to write out: its digest and either its bytes or the file holding them."""

CREATED_ANNOTATION = "org.opencontainers.image.created"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class History:
    """One history entry; a layer's entry has ``empty_layer`` False, metadata-only steps True."""

    created_by: str
    comment: str = ""
    empty_layer: bool = False


@dataclass
class ImageConfig:
    """The runtime configuration of an image (the ``config`` object of the image config JSON)."""

    platform: Platform = field(default_factory=lambda: Platform("linux", "amd64"))
    env: list[str] = field(default_factory=list)
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    working_dir: str = ""
    user: str = ""
    exposed_ports: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    volumes: list[str] = field(default_factory=list)
    stop_signal: str = ""

    def runtime_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.env:
            out["Env"] = list(self.env)
        if self.entrypoint is not None:
            out["Entrypoint"] = list(self.entrypoint)
        if self.cmd is not None:
            out["Cmd"] = list(self.cmd)
        if self.working_dir:
            out["WorkingDir"] = self.working_dir
        if self.user:
            out["User"] = self.user
        if self.exposed_ports:
            out["ExposedPorts"] = {port: {} for port in self.exposed_ports}
        if self.labels:
            out["Labels"] = dict(self.labels)
        if self.volumes:
            out["Volumes"] = {volume: {} for volume in self.volumes}
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        return out


@dataclass(frozen=True)
class Image:
    """An image with its exact config and manifest bytes. Layers point at blobs in a store."""

    config_bytes: bytes
    manifest_bytes: bytes
    layers: tuple[LayerBlob, ...]
    format: ImageFormat = ImageFormat.OCI
    platform: Platform | None = None

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest_bytes)

    @property
    def config_digest(self) -> str:
        return sha256_digest(self.config_bytes)

    @property
    def media_type(self) -> str:
        return self.format.manifest

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads(self.manifest_bytes)

    @property
    def config(self) -> dict[str, Any]:
        return json.loads(self.config_bytes)

    def descriptor(self, annotations: dict[str, str] | None = None) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.manifest_bytes), annotations or {}, self.platform)

    def blobs(self) -> list[BlobSource]:
        """Every blob this image needs besides its manifest: the config, then the layers."""
        return [
            (self.config_digest, self.config_bytes),
            *((layer.digest, layer.path) for layer in self.layers),
        ]


@dataclass(frozen=True)
class Index:
    """An image index: several images (one per platform) and/or artifact manifests."""

    index_bytes: bytes
    images: tuple[Image, ...]
    format: ImageFormat = ImageFormat.OCI
    artifact_blobs: tuple[BlobSource, ...] = ()

    @property
    def digest(self) -> str:
        return sha256_digest(self.index_bytes)

    @property
    def media_type(self) -> str:
        return self.format.index

    def blobs(self) -> list[BlobSource]:
        """Every blob the index needs besides its own bytes: child manifests and their blobs, artifacts."""
        out: list[BlobSource] = []
        for image in self.images:
            out += [(image.digest, image.manifest_bytes), *image.blobs()]
        out += list(self.artifact_blobs)
        return out


def build_config_bytes(
    config: ImageConfig,
    diff_ids: Sequence[str],
    history: Sequence[History],
    source_date_epoch: int,
) -> bytes:
    """The image config JSON. One non-empty history entry per layer, in order."""
    layer_entries = sum(1 for h in history if not h.empty_layer)
    if layer_entries != len(diff_ids):
        raise ValueError(f"{layer_entries} non-empty history entries for {len(diff_ids)} layers")
    created = rfc3339(source_date_epoch)
    doc: dict[str, Any] = {
        "architecture": config.platform.architecture,
        "os": config.platform.os,
        "created": created,
        "config": config.runtime_dict(),
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [_history_dict(h, created) for h in history],
    }
    if config.platform.variant:
        doc["variant"] = config.platform.variant
    return canonical_json(doc)


def _history_dict(entry: History, created: str) -> dict[str, Any]:
    out: dict[str, Any] = {"created": created, "created_by": entry.created_by}
    if entry.comment:
        out["comment"] = entry.comment
    if entry.empty_layer:
        out["empty_layer"] = True
    return out


def build_image(
    layers: Sequence[LayerBlob],
    config: ImageConfig,
    *,
    history: Sequence[History] | None = None,
    annotations: dict[str, str] | None = None,
    source_date_epoch: int = 0,
    fmt: ImageFormat = ImageFormat.OCI,
) -> Image:
    """Assemble config and manifest bytes for ``layers`` (base first).

    ``org.opencontainers.image.created`` is set from SOURCE_DATE_EPOCH unless given; Docker schema2 has no
    annotations, so they are dropped with ``fmt=DOCKER``.
    """
    if not layers:
        raise ValueError("an image needs at least one layer")
    if history is None:
        history = [History(created_by=f"ocibuild layer {i}") for i in range(len(layers))]
    config_bytes = build_config_bytes(config, [layer.diff_id for layer in layers], history, source_date_epoch)
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": fmt.manifest,
        "config": Descriptor(fmt.config, sha256_digest(config_bytes), len(config_bytes)).to_dict(),
        "layers": [layer.descriptor(fmt).to_dict() for layer in layers],
    }
    if fmt is ImageFormat.OCI:
        all_annotations = {CREATED_ANNOTATION: rfc3339(source_date_epoch), **(annotations or {})}
        manifest["annotations"] = all_annotations
    return Image(config_bytes, canonical_json(manifest), tuple(layers), fmt, config.platform)


def build_index(
    images: Sequence[Image],
    *,
    annotations: dict[str, str] | None = None,
    artifacts: Sequence[Descriptor] = (),
    artifact_blobs: Sequence[BlobSource] = (),
    fmt: ImageFormat = ImageFormat.OCI,
) -> Index:
    """An index over ``images`` (each with its platform) plus artifact manifests.

    ``artifacts`` are the descriptors listed in the index; ``artifact_blobs`` every blob they need (their
    manifests included).
    """
    manifests = [image.descriptor().to_dict() for image in images]
    manifests += [descriptor.to_dict() for descriptor in artifacts]
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": fmt.index, "manifests": manifests}
    if annotations and fmt is ImageFormat.OCI:
        doc["annotations"] = dict(annotations)
    return Index(canonical_json(doc), tuple(images), fmt, tuple(artifact_blobs))
