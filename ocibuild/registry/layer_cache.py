"""A layer cache in a registry repository, shared by every machine that builds (``--cache-repo``).

One OCI manifest per layer key, tagged ``layer-<sha256 of the key>``: its config is the empty descriptor, its one
layer the cached blob, its annotations the key itself and the layer's diff_id. Only the distribution API is used
(manifests by tag, blobs, cross-repository mounts), so any registry serves as a cache: distribution, GHCR, ECR,
Artifact Registry, Harbor, Quay.

Trust (docs/fleet-cache.md): an entry is only a claim that key K produced digest D. The blob is always checked
against D and its size as it is downloaded; an entry that fails any check is a warning and the layer is built.
A cache never fails a build: every error here is a warning, and a registry that cannot be reached turns the cache
off for the rest of the build.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata

import requests

from ocibuild.errors import OcibuildError
from ocibuild.oci.compression import Compression
from ocibuild.oci.digest import is_digest, sha256_digest
from ocibuild.oci.layer import LayerBlob
from ocibuild.oci.mediatypes import OCI_EMPTY, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_MANIFEST
from ocibuild.oci.store import Store
from ocibuild.registry.auth import pull_scope, push_scope
from ocibuild.registry.client import RegistryClient
from ocibuild.registry.credentials import Credentials
from ocibuild.registry.known import KnownBlobs
from ocibuild.registry.progress import Progress
from ocibuild.registry.pull_image import _Fetcher
from ocibuild.registry.reference import parse_reference, uses_plain_http
from ocibuild.registry.retry import RetryPolicy
from ocibuild.registry.upload import Blob, push_blob

ARTIFACT_TYPE = "application/vnd.ocibuild.layer-cache.v1"
KEY_ANNOTATION = "dev.ocibuild.cache.key"
DIFF_ID_ANNOTATION = "dev.ocibuild.cache.diff-id"
UNCOMPRESSED_ANNOTATION = "dev.ocibuild.cache.uncompressed-size"
EMPTY = b"{}"
EMPTY_DIGEST = sha256_digest(EMPTY)
MAX_ENTRY = 64 << 10
"""The most bytes read of an entry's manifest (one layer and three annotations need under 2 KiB)."""
LAYER_TYPES = frozenset({OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD})
_TAG_PREFIX = "layer-"
_BY_NAME = {c.value: c.media_type for c in Compression}
_ERRORS = (OcibuildError, requests.RequestException, OSError, ValueError, KeyError, TypeError)


class CacheEntryError(ValueError):
    """An entry that is not a well-formed claim for the key asked for."""


@functools.cache
def compressors() -> str:
    """The compressor builds that make layer bytes. The key names the compression (``gzip``), not the build of
    its compressor; pinned in pyproject.toml, but a fleet may run several ocibuild releases, so the tag adds them:
    machines whose compressors differ never share an entry (each would get bytes it does not make itself)."""
    versions = []
    for name in ("isal", "zstandard"):
        try:
            versions.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name}==none")
    return ",".join(versions)


def cache_tag(cache_key: str) -> str:
    """The tag of a key's entry: a digest (of the key and the compressors), so any key makes a valid tag."""
    return _TAG_PREFIX + hashlib.sha256(f"{cache_key}\n{compressors()}".encode()).hexdigest()


def entry_manifest(cache_key: str, layer: LayerBlob) -> bytes:
    """The exact bytes of the entry that claims ``cache_key`` produced ``layer``."""
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": len(EMPTY)},
        "layers": [{"mediaType": layer.media_type, "digest": layer.digest, "size": layer.size}],
        "annotations": {
            KEY_ANNOTATION: cache_key,
            DIFF_ID_ANNOTATION: layer.diff_id,
            UNCOMPRESSED_ANNOTATION: str(layer.uncompressed_size),
        },
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Claim:
    """What an entry says: the layer's identities (its bytes are not yet checked)."""

    digest: str
    size: int
    media_type: str
    diff_id: str
    uncompressed_size: int


def parse_entry(data: bytes, cache_key: str) -> Claim:
    """The claim of an entry's manifest; raises ``CacheEntryError`` unless it is a well-formed one for the key."""
    try:
        doc = json.loads(data)
        annotations = doc["annotations"]
        (layer,) = doc["layers"]
        claim = Claim(
            digest=layer["digest"],
            size=int(layer["size"]),
            media_type=layer["mediaType"],
            diff_id=annotations[DIFF_ID_ANNOTATION],
            uncompressed_size=int(annotations.get(UNCOMPRESSED_ANNOTATION, 0)),
        )
        key = annotations[KEY_ANNOTATION]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CacheEntryError("not a layer cache entry") from None
    if key != cache_key:
        raise CacheEntryError("the entry is for another key")
    if not (isinstance(claim.digest, str) and is_digest(claim.digest)):
        raise CacheEntryError(f"bad layer digest {str(claim.digest)[:80]!r}")
    if not (isinstance(claim.diff_id, str) and is_digest(claim.diff_id)):
        raise CacheEntryError(f"bad diff_id {str(claim.diff_id)[:80]!r}")
    if claim.media_type not in LAYER_TYPES:
        raise CacheEntryError(f"not a layer media type: {str(claim.media_type)[:80]!r}")
    _, compression, _ = (["", *cache_key.rsplit("|", 2)])[-3:]
    if compression in _BY_NAME and claim.media_type != _BY_NAME[compression]:
        raise CacheEntryError(f"a {compression} key with a {claim.media_type} layer")
    if claim.size < 0 or claim.uncompressed_size < 0:
        raise CacheEntryError("negative size")
    return claim


@dataclass
class CacheStats:
    """What a build asked of the cache; tests and the benchmark read it."""

    hits: int = 0
    misses: int = 0
    rejected: int = 0
    downloaded_bytes: int = 0
    published: int = 0
    uploaded_bytes: int = 0
    """Blob bytes sent while publishing (a blob mounted from the pushed image, or already there, sends none)."""


class LayerCache:
    """``lookup`` and ``built`` for ``cached_layer`` (``ocibuild.oci.layer.RemoteLayers``), ``publish_pending``
    after the image is written or pushed. Safe to share between the threads of a build."""

    def __init__(
        self,
        repo: str,
        store: Store,
        *,
        readonly: bool = False,
        insecure_registries: Sequence[str] = (),
        credentials: Credentials | None = None,
        known: KnownBlobs | None = None,
        warn: Callable[[str], None] = lambda text: None,
        jobs: int = 4,
    ) -> None:
        ref = parse_reference(repo, default_tag="")
        if ref.tag or ref.digest:
            raise ValueError(f"--cache-repo {repo}: name a repository (REGISTRY/REPO), without a tag or digest")
        self.registry, self.repository, self.name = ref.registry, ref.repository, ref.name
        self.store = store
        self.readonly = readonly
        self.known = known if known is not None else KnownBlobs()
        self.warn = warn
        self.jobs = jobs
        self.stats = CacheStats()
        host = ref.api_host
        # Few, short retries: a cache is an optimisation, never worth minutes of a build.
        policy = RetryPolicy(attempts=3, deadline=5.0)
        self.client = RegistryClient(
            host, plain_http=uses_plain_http(host, tuple(insecure_registries)), credentials=credentials, policy=policy
        )
        self._lock = threading.Lock()
        self._pending: dict[str, LayerBlob] = {}
        self._state: bool | None = None  # None: not yet reached; False: off for this build

    # RemoteLayers
    def lookup(self, cache_key: str) -> LayerBlob | None:
        """The layer an entry names, its blob in the store (downloaded and checked unless already there).
        Never asked under ``--offline`` (no network at all)."""
        if self.store.offline or not self._reachable():
            return None
        try:
            layer = self._lookup(cache_key)
        except _ERRORS as exc:
            with self._lock:
                self.stats.rejected += 1
            self.warn(f"cache {self.name}: {_one_line(exc)}; building the layer")
            return None
        with self._lock:
            if layer is None:
                self.stats.misses += 1
            else:
                self.stats.hits += 1
        return layer

    def peek(self, cache_key: str) -> str | None:
        """The digest an entry claims for ``cache_key``, downloading nothing (``ocibuild plan``); None on a miss."""
        if self.store.offline or not self._reachable():
            return None
        try:
            claim = self._claim(cache_key)
        except _ERRORS as exc:
            self.warn(f"cache {self.name}: {_one_line(exc)}")
            return None
        return None if claim is None else claim.digest

    def built(self, cache_key: str, layer: LayerBlob) -> None:
        if not self.readonly:
            with self._lock:
                self._pending[cache_key] = layer

    # publishing
    @property
    def pending(self) -> dict[str, LayerBlob]:
        """The layers built here and not yet published, by cache key."""
        with self._lock:
            return dict(self._pending)

    def publish_pending(self, pushed: Sequence[str] = ()) -> int:
        """Publish every layer built here (never with ``readonly``); returns how many were published.

        ``pushed``: references the image was just pushed to; those on the cache's registry are mount sources,
        so the cache gets the layers without their bytes being sent again. Failures are warnings."""
        with self._lock:
            pending, self._pending = dict(self._pending), {}
        if self.readonly or self.store.offline or not pending or not self._reachable():
            return 0
        sources = [r.repository for r in map(parse_reference, pushed) if r.registry == self.registry]
        try:  # the entries' shared config, once, before they race to it
            self._push(Blob(EMPTY_DIGEST, len(EMPTY), EMPTY), ())
        except _ERRORS as exc:
            self.warn(f"cache {self.name}: could not publish: {_one_line(exc)}")
            return 0
        with ThreadPoolExecutor(max_workers=max(1, self.jobs), thread_name_prefix="cache") as pool:
            done = list(pool.map(lambda item: self.publish(*item, mount_from=sources), pending.items()))
        return sum(done)

    def publish(self, cache_key: str, layer: LayerBlob, mount_from: Sequence[str] = ()) -> bool:
        """Upload (or mount) ``layer``'s blob and the entry that claims ``cache_key`` made it; False on failure."""
        if self.readonly:
            return False
        try:
            self._push(Blob(EMPTY_DIGEST, len(EMPTY), EMPTY), ())
            self._push(Blob(layer.digest, layer.size, layer.path), mount_from)
            scope = push_scope(self.repository)
            data = entry_manifest(cache_key, layer)
            self.client.put_manifest(self.repository, cache_tag(cache_key), data, OCI_MANIFEST, scope)
        except _ERRORS as exc:
            self.warn(f"cache {self.name}: could not publish layer {layer.digest[:19]}: {_one_line(exc)}")
            return False
        with self._lock:
            self.stats.published += 1
        return True

    def _push(self, blob: Blob, mount_from: Sequence[str]) -> None:
        sources = [*self.known.sources(self.registry, blob.digest, exclude=self.repository), *mount_from]
        sources = [s for s in sources if s != self.repository]
        outcome = push_blob(
            self.client,
            self.repository,
            blob,
            mount_from=sources[0] if sources else None,
            chunk_size=None,
            progress=Progress(),
        )
        if outcome == "uploaded":
            with self._lock:
                self.stats.uploaded_bytes += blob.size
        self.known.add(self.registry, self.repository, [blob.digest])

    # internals
    def _reachable(self) -> bool:
        with self._lock:
            if self._state is None:
                try:  # pull scope: a reader with pull-only credentials still reads; a refused write only warns
                    self.client.ping(pull_scope(self.repository))
                    self._state = True
                except _ERRORS as exc:
                    self._state = False
                    self.warn(f"cache {self.name}: {_one_line(exc)}; building without the cache")
            return self._state

    def _lookup(self, cache_key: str) -> LayerBlob | None:
        claim = self._claim(cache_key)
        if claim is None:
            return None
        if not self.store.has_blob(claim.digest, claim.size):
            fetcher = _Fetcher(self.client, self.repository, self.store, Progress())
            fetcher.blob(claim.digest, claim.size)  # checked against the claimed digest and size as it arrives
            with self._lock:
                self.stats.downloaded_bytes += claim.size
        self.known.add(self.registry, self.repository, [claim.digest])
        return LayerBlob(
            diff_id=claim.diff_id,
            digest=claim.digest,
            size=claim.size,
            media_type=claim.media_type,
            path=self.store.blob_path(claim.digest),
            uncompressed_size=claim.uncompressed_size,
        )

    def _claim(self, cache_key: str) -> Claim | None:
        tag = cache_tag(cache_key)
        scope = pull_scope(self.repository)
        what = f"get cache entry {tag[:19]}"
        r = self.client.send(
            "GET",
            self.client.url(self.repository, f"manifests/{tag}"),
            scope,
            what=what,
            headers={"Accept": OCI_MANIFEST},
            max_body=MAX_ENTRY,
        )
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise self.client.fail(r, what)
        return parse_entry(r.content, cache_key)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
