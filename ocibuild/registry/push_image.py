"""Push an image or index to one or more references: blobs in parallel, then manifests by digest, then tags."""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from ocibuild.errors import BuildError, UserInputError
from ocibuild.oci.digest import sha256_digest
from ocibuild.oci.image import Image, Index
from ocibuild.registry.auth import push_scope
from ocibuild.registry.body import read_small, source_size
from ocibuild.registry.client import RegistryClient
from ocibuild.registry.credentials import Credentials
from ocibuild.registry.known import KnownBlobs
from ocibuild.registry.progress import Progress, default_progress
from ocibuild.registry.reference import Reference, parse_reference, uses_plain_http
from ocibuild.registry.retry import Aborted
from ocibuild.registry.upload import Blob, push_blob

_SESSION_KNOWN = KnownBlobs()
"""Blob locations learnt by this process, used when no ``known_blobs_file`` is given."""


@dataclass(frozen=True)
class _Manifest:
    digest: str
    data: bytes
    media_type: str


@dataclass(frozen=True)
class _Plan:
    """What a push sends: plain blobs, child manifests (by digest), then the target itself."""

    blobs: list[Blob]
    children: list[_Manifest]
    target: _Manifest


def _plan(target: Image | Index) -> _Plan:
    sources = dict(target.blobs())
    children: list[_Manifest] = []
    if isinstance(target, Image):
        own = _Manifest(target.digest, target.manifest_bytes, target.media_type)
    else:
        for entry in json.loads(target.index_bytes).get("manifests", []):
            if entry["digest"] not in sources:
                raise BuildError(f"index lists {entry['digest']} but has no bytes for it")
            data = read_small(sources.pop(entry["digest"]))
            if sha256_digest(data) != entry["digest"]:
                raise BuildError(f"index child {entry['digest']} does not match its bytes")
            children.append(_Manifest(entry["digest"], data, entry["mediaType"]))
        own = _Manifest(target.digest, target.index_bytes, target.media_type)
    blobs = [Blob(d, source_size(s), s) for d, s in sources.items()]
    blobs.sort(key=lambda b: b.size, reverse=True)  # biggest first: the parallel push ends sooner
    return _Plan(blobs, children, own)


def _group(refs: Sequence[Reference]) -> dict[tuple[str, str], list[Reference]]:
    groups: dict[tuple[str, str], list[Reference]] = {}
    for ref in refs:
        groups.setdefault((ref.registry, ref.repository), []).append(ref)
    return groups


def push(
    target: Image | Index,
    refs: list[str],
    *,
    jobs: int = 4,
    insecure_registries: Sequence[str] = (),
    auth: Credentials | None = None,
    progress: Progress | None = None,
    chunk_size: int | None = None,
    known_blobs_file: Path | None = None,
) -> list[str]:
    """Push ``target`` to every reference; returns ``REGISTRY/REPO[:TAG]@sha256:...`` for each.

    Per repository: blobs (skipped if present, mounted if known in another repository of the registry, else
    streamed), then child manifests by digest. Tags are written last, once every repository holds everything,
    so no tag ever points at an incomplete image. ``chunk_size`` None sends each blob in one streaming PATCH.
    """
    parsed = list(dict.fromkeys(parse_reference(r) for r in refs))
    if not parsed:
        raise UserInputError("push: no image reference given")
    for ref in parsed:
        if ref.digest and ref.digest != target.digest:
            raise UserInputError(f"{ref}: digest does not match the image ({target.digest})")
    plan = _plan(target)
    known = KnownBlobs(known_blobs_file) if known_blobs_file else _SESSION_KNOWN
    clients: dict[str, RegistryClient] = {}
    progress = progress or default_progress()
    try:
        for (registry, repository), group in _group(parsed).items():
            if registry not in clients:
                host = group[0].api_host
                clients[registry] = RegistryClient(
                    host,
                    plain_http=uses_plain_http(host, tuple(insecure_registries)),
                    credentials=auth,
                    pool_size=jobs + 2,
                )
                clients[registry].on_retry = progress.note
                clients[registry].ping(push_scope(repository))
            client = clients[registry]
            _push_blobs(client, registry, repository, plan.blobs, jobs, known, chunk_size, progress)
            for child in plan.children:
                _put_manifest(client, repository, child.digest, child, progress)
            if any(not ref.tag for ref in group):
                _put_manifest(client, repository, plan.target.digest, plan.target, progress)
        for ref in parsed:
            if ref.tag:
                _put_manifest(clients[ref.registry], ref.repository, ref.tag, plan.target, progress)
    finally:
        progress.close()
        known.save()
    return [ref.with_digest(target.digest) for ref in parsed]


def _push_blobs(
    client: RegistryClient,
    registry: str,
    repository: str,
    blobs: list[Blob],
    jobs: int,
    known: KnownBlobs,
    chunk_size: int | None,
    progress: Progress,
) -> None:
    def one(blob: Blob) -> None:
        if client.policy.abort.is_set():
            raise Aborted("stopped")
        sources = known.sources(registry, blob.digest, exclude=repository)
        outcome = push_blob(
            client,
            repository,
            blob,
            mount_from=sources[0] if sources else None,
            chunk_size=chunk_size,
            progress=progress,
        )
        progress.blob_finished(blob.digest, blob.size, outcome)

    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="push") as pool:
        futures = [pool.submit(one, blob) for blob in blobs]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = [f for f in done if f.exception() is not None]
        if failed:
            client.policy.abort.set()
            for f in futures:
                f.cancel()
            errors = [f.exception() for f in futures if f.done() and not f.cancelled() and f.exception()]
            first = next((e for e in errors if not isinstance(e, Aborted)), errors[0])
            raise first  # type: ignore[misc]
    known.add(registry, repository, [b.digest for b in blobs])


def _put_manifest(client: RegistryClient, repository: str, reference: str, manifest: _Manifest, progress: Progress):
    scope = push_scope(repository)
    returned = client.put_manifest(repository, reference, manifest.data, manifest.media_type, scope)
    if returned and returned != manifest.digest:
        raise BuildError(
            f"{client.host}/{repository}: registry stored manifest {returned} instead of {manifest.digest}"
        )
    progress.note(f"{client.host}/{repository}{'@' if ':' in reference else ':'}{reference}: pushed manifest")
