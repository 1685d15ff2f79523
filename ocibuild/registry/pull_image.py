"""Pull an image (or index) into an OCI layout, verifying every digest and streaming layers to disk."""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from ocibuild.errors import BuildError, UserInputError
from ocibuild.oci.descriptor import Descriptor, Platform
from ocibuild.oci.digest import sha256_digest
from ocibuild.oci.image import BlobSource, Image, Index
from ocibuild.oci.layer import LayerBlob
from ocibuild.oci.layout import LayoutError, check_output_dir, read_layout, write_layout
from ocibuild.oci.mediatypes import INDEX_TYPES, MANIFEST_TYPES, ImageFormat
from ocibuild.oci.store import Store
from ocibuild.oci.tree import remove_tree
from ocibuild.registry.auth import Scope, pull_scope
from ocibuild.registry.client import RegistryClient
from ocibuild.registry.credentials import Credentials
from ocibuild.registry.deadline import Deadline, Limits
from ocibuild.registry.progress import Progress, default_progress
from ocibuild.registry.reference import Reference, parse_reference, uses_plain_http

READ_BLOCK = 1 << 20


class _Fetcher:
    """Downloads of one repository into a store, each checked against its digest and size."""

    def __init__(self, client: RegistryClient, repository: str, store: Store, progress: Progress) -> None:
        self.client = client
        self.repository = repository
        self.scope: Scope = pull_scope(repository)
        self.store = store
        self.progress = progress

    def manifest(self, reference: str, expected: str = "") -> tuple[bytes, str]:
        """Manifest bytes and media type; checked against ``expected`` or the registry's digest header."""
        r = self.client.get_manifest(self.repository, reference, self.scope)  # read up to its 4 MiB limit only
        data = r.content
        actual = sha256_digest(data)
        claimed = expected or r.headers.get("Docker-Content-Digest", "")
        if claimed and claimed != actual:
            raise BuildError(f"{self.client.host}/{self.repository}@{reference}: manifest digest {actual} != {claimed}")
        try:
            media_type = json.loads(data).get("mediaType") or r.headers.get("Content-Type", "").split(";")[0]
        except (ValueError, AttributeError):
            raise BuildError(f"{self.client.host}/{self.repository}@{reference}: manifest is not JSON") from None
        return data, media_type

    def blob(self, digest: str, size: int) -> Path:
        """The blob's path in the store, downloaded unless already there."""
        if self.store.has_blob(digest, size):
            self.progress.blob_finished(digest, size, "cached")
            return self.store.blob_path(digest)
        self.progress.blob_started(digest, size)
        with self.store.temp_path(".part") as temp:
            self._download(digest, size, temp)
            path = self.store.commit_blob(temp, digest)
        self.progress.blob_finished(digest, size, "downloaded")
        return path

    def _download(self, digest: str, size: int, temp: Path) -> None:
        what = f"{self.client.host}/{self.repository}: download blob {digest[:19]}"
        digester, written, attempt, started = hashlib.sha256(), 0, 0, time.monotonic()
        with open(temp, "wb") as out:
            while True:
                seconds = self.client.limits.seconds_for(size - written)
                deadline = Deadline(seconds)  # the whole blob, headers to last byte
                try:
                    with deadline:
                        r = self.client.get_blob(self.repository, digest, self.scope, offset=written)
                        if r.status_code == 200 and written:  # Range ignored: start over
                            out.seek(0)
                            out.truncate()
                            digester, written = hashlib.sha256(), 0
                        with r:
                            for chunk in r.iter_content(READ_BLOCK):
                                out.write(chunk)
                                digester.update(chunk)
                                written += len(chunk)
                                if written > size:
                                    raise BuildError(f"{what}: registry sent more than {size} bytes")
                                self.progress.blob_progress(digest, written)
                    break
                except requests.RequestException:
                    if deadline.expired:
                        late = f"not complete within {seconds:.0f} s (the registry is too slow)"
                        raise BuildError(f"{what}: {late}") from None
                    if not self.client.policy.wait(attempt, started):
                        raise BuildError(f"{what}: connection dropped (gave up after {attempt + 1} tries)") from None
                    attempt += 1
        actual = "sha256:" + digester.hexdigest()
        if written != size or actual != digest:
            raise BuildError(f"{what}: got {written} bytes with digest {actual}, expected {size} bytes")

    def small_blob(self, descriptor: dict) -> bytes:
        return self.blob(descriptor["digest"], int(descriptor["size"])).read_bytes()

    def image(self, data: bytes, media_type: str, platform: Platform | None, jobs: int) -> Image:
        doc = json.loads(data)
        config_bytes = self.small_blob(doc["config"])
        config = json.loads(config_bytes)
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
        if len(diff_ids) != len(doc.get("layers", [])):
            raise BuildError(f"{self.repository}: {len(doc.get('layers', []))} layers but {len(diff_ids)} diff_ids")
        with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="pull") as pool:
            paths = list(pool.map(lambda d: self.blob(d["digest"], int(d["size"])), doc["layers"]))
        layers = tuple(
            LayerBlob(diff_id, d["digest"], int(d["size"]), d["mediaType"], path)
            for d, diff_id, path in zip(doc["layers"], diff_ids, paths, strict=True)
        )
        fmt = ImageFormat.OCI if media_type == ImageFormat.OCI.manifest else ImageFormat.DOCKER
        platform = platform or Platform(config.get("os", ""), config.get("architecture", ""), config.get("variant", ""))
        return Image(config_bytes, data, layers, fmt, platform)

    def artifact(self, descriptor: Descriptor) -> list[BlobSource]:
        """A non-image child of an index (attestation, nested index): its manifest and the blobs it names."""
        data, _ = self.manifest(descriptor.digest, descriptor.digest)
        doc = json.loads(data)
        named = [doc["config"]] if isinstance(doc.get("config"), dict) else []
        named += [*doc.get("layers", []), *doc.get("blobs", [])]
        return [(descriptor.digest, data), *((d["digest"], self.blob(d["digest"], int(d["size"]))) for d in named)]


def _matches(have: Platform | None, want: Platform) -> bool:
    return (
        have is not None
        and have.os == want.os
        and have.architecture == want.architecture
        and (not want.variant or have.variant == want.variant)
    )


def _is_image(descriptor: Descriptor) -> bool:
    return descriptor.media_type in MANIFEST_TYPES and (
        descriptor.platform is None or descriptor.platform.os != "unknown"
    )


def pull(
    ref: str,
    layout_dir: Path | None,
    *,
    insecure_registries: Sequence[str] = (),
    platform: str | Platform | None = None,
    auth: Credentials | None = None,
    store: Store | None = None,
    jobs: int = 4,
    progress: Progress | None = None,
    limits: Limits | None = None,
) -> Image | Index:
    """Fetch ``ref`` into an OCI layout at ``layout_dir`` (tagged with the reference's tag) and return it.

    With ``platform`` an index resolves to that platform's image. Blobs go through ``store`` when given (so later
    pulls and builds reuse them), else through a temporary store beside the layout. Without ``layout_dir`` the
    image is only fetched into ``store`` (its blobs are read from there). ``limits`` bound how long the registry
    may take (default: ``Limits.from_env()``).
    """
    parsed = parse_reference(ref)
    wanted = Platform.parse(platform) if isinstance(platform, str) else platform
    plain_http = uses_plain_http(parsed.api_host, tuple(insecure_registries))
    client = RegistryClient(parsed.api_host, plain_http=plain_http, credentials=auth, limits=limits)
    progress = progress or default_progress()
    if layout_dir is None:
        if store is None:
            raise ValueError("pull: give a layout directory or a store")
        return _fetch(parsed, client, store, wanted, jobs, progress)
    layout_dir = Path(layout_dir)
    try:
        check_output_dir(layout_dir)
    except LayoutError as exc:
        raise UserInputError(str(exc)) from None
    layout_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = None if store else Path(tempfile.mkdtemp(prefix=".pull.", dir=layout_dir.parent))
    try:
        target = _fetch(parsed, client, store or Store(scratch), wanted, jobs, progress)
        try:
            write_layout(layout_dir, target, [parsed.tag] if parsed.tag else None)
        except LayoutError as exc:
            raise UserInputError(str(exc)) from None
    finally:
        if scratch is not None:
            remove_tree(scratch, ignore_errors=True)
    return read_layout(layout_dir, parsed.tag or None, verify_layers=False)


def _fetch(
    parsed: Reference, client: RegistryClient, store: Store, wanted: Platform | None, jobs: int, progress: Progress
) -> Image | Index:
    """The image or index of ``parsed``, its blobs fetched into ``store``."""
    try:
        client.on_retry = progress.note
        fetcher = _Fetcher(client, parsed.repository, store, progress)
        client.ping(fetcher.scope)
        data, media_type = fetcher.manifest(parsed.digest or parsed.tag, parsed.digest)
        return _resolve(fetcher, str(parsed), data, media_type, wanted, jobs)
    finally:
        progress.close()


def _resolve(
    fetcher: _Fetcher, name: str, data: bytes, media_type: str, wanted: Platform | None, jobs: int
) -> Image | Index:
    if media_type in MANIFEST_TYPES:
        image = fetcher.image(data, media_type, None, jobs)
        if wanted and not _matches(image.platform, wanted):
            raise BuildError(f"{name}: image is {image.platform}, not {wanted}")
        return image
    if media_type not in INDEX_TYPES:
        raise BuildError(f"{name}: unsupported manifest media type {media_type!r}")
    children = [Descriptor.from_dict(m) for m in json.loads(data).get("manifests", [])]
    if wanted:
        found = [c for c in children if _is_image(c) and _matches(c.platform, wanted)]
        if not found:
            have = ", ".join(str(c.platform) for c in children if _is_image(c) and c.platform) or "none"
            raise BuildError(f"{name}: no image for {wanted} (index has: {have})")
        child_data, child_type = fetcher.manifest(found[0].digest, found[0].digest)
        return fetcher.image(child_data, child_type, found[0].platform, jobs)
    images, artifacts = [], []
    for child in children:
        if _is_image(child):
            child_data, child_type = fetcher.manifest(child.digest, child.digest)
            images.append(fetcher.image(child_data, child_type, child.platform, jobs))
        else:
            artifacts += fetcher.artifact(child)
    fmt = ImageFormat.OCI if media_type == ImageFormat.OCI.index else ImageFormat.DOCKER
    return Index(data, tuple(images), fmt, tuple(artifacts))
