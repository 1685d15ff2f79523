"""OCI 1.1 referrers on a registry: push artifacts whose subject is an image, list and fetch them back.

A registry with the referrers API (``GET /v2/<repo>/referrers/<digest>`` answers an index) lists an artifact as
soon as its manifest is pushed. Without it (distribution 2.x, Debian's ``docker-registry``), the client keeps the
list itself: the tag ``sha256-<hex>`` of the subject points at an index of the artifacts' descriptors, read,
extended and written back on every push (distribution-spec v1.1, "referrers tag schema").
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from ocibuild.errors import BuildError, UserInputError
from ocibuild.oci.artifact import Artifact, referrers_index, referrers_tag
from ocibuild.oci.descriptor import Descriptor
from ocibuild.oci.digest import sha256_digest
from ocibuild.oci.mediatypes import INDEX_TYPES, OCI_INDEX, OCI_MANIFEST
from ocibuild.registry.auth import pull_scope, push_scope
from ocibuild.registry.client import RegistryClient
from ocibuild.registry.credentials import Credentials
from ocibuild.registry.progress import Progress
from ocibuild.registry.reference import Reference, parse_reference, uses_plain_http
from ocibuild.registry.upload import Blob, push_blob

MAX_DOCUMENT = 64 << 20


def _client(ref: Reference, insecure_registries: Sequence[str], auth: Credentials | None) -> RegistryClient:
    host = ref.api_host
    return RegistryClient(host, plain_http=uses_plain_http(host, tuple(insecure_registries)), credentials=auth)


def has_referrers_api(client: RegistryClient, repository: str, digest: str) -> bool:
    """True when the registry answers the referrers API with an index (False: use the fallback tag)."""
    r = client.send("GET", client.url(repository, f"referrers/{digest}"), pull_scope(repository), what="referrers")
    content_type = r.headers.get("Content-Type", "").split(";")[0].strip()
    r.close()
    return r.status_code == 200 and content_type == OCI_INDEX


def push_referrers(
    artifacts: Sequence[Artifact],
    refs: Sequence[str],
    *,
    insecure_registries: Sequence[str] = (),
    auth: Credentials | None = None,
    progress: Progress | None = None,
) -> list[str]:
    """Push ``artifacts`` to the repository of every reference (after the image); returns one line per
    repository saying how they are listed (``referrers API`` or the fallback tag)."""
    progress = progress or Progress()
    lines = []
    for ref in dict.fromkeys(parse_reference(r).name for r in refs):
        parsed = parse_reference(ref)
        client = _client(parsed, insecure_registries, auth)
        scope = push_scope(parsed.repository)
        for artifact in artifacts:
            for digest, data in artifact.blobs:
                push_blob(
                    client,
                    parsed.repository,
                    Blob(digest, len(data), data),
                    mount_from=None,
                    chunk_size=None,
                    progress=progress,
                )
            stored = client.put_manifest(
                parsed.repository, artifact.digest, artifact.manifest_bytes, OCI_MANIFEST, scope
            )
            if stored and stored != artifact.digest:
                raise BuildError(f"{parsed}: registry stored artifact {stored} instead of {artifact.digest}")
        subjects = dict.fromkeys(a.subject for a in artifacts)
        for subject in subjects:
            if has_referrers_api(client, parsed.repository, subject):
                lines.append(f"{parsed.name}: referrers of {subject} listed by the referrers API")
                continue
            mine = [a.descriptor() for a in artifacts if a.subject == subject]
            tag = referrers_tag(subject)
            listed = _fallback_list(client, parsed.repository, tag)
            known = {d.digest for d in listed}
            merged = listed + [d for d in mine if d.digest not in known]
            if len(merged) != len(listed) or not listed:
                client.put_manifest(parsed.repository, tag, referrers_index(merged), OCI_INDEX, scope)
            lines.append(f"{parsed.name}:{tag}: {len(merged)} referrer(s) of {subject}")
    return lines


def _fallback_list(client: RegistryClient, repository: str, tag: str) -> list[Descriptor]:
    """The descriptors the fallback tag lists (none when the tag does not exist)."""
    r = client.send(
        "GET",
        client.url(repository, f"manifests/{tag}"),
        pull_scope(repository),
        what=f"get {tag[:19]}",
        headers={"Accept": OCI_INDEX},
    )
    if r.status_code == 404:
        return []
    if r.status_code != 200:
        raise client.fail(r, f"get {tag[:19]}")
    return _descriptors(r.content, f"{client.host}/{repository}:{tag}")


def _descriptors(data: bytes, where: str) -> list[Descriptor]:
    try:
        doc = json.loads(data[:MAX_DOCUMENT])
        if doc.get("mediaType", OCI_INDEX) not in INDEX_TYPES:
            raise ValueError("not an index")
        return [Descriptor.from_dict(m) for m in doc.get("manifests", [])]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BuildError(f"{where}: malformed referrers index ({exc})") from None


@dataclass(frozen=True)
class RemoteSubject:
    """A registry image and the artifacts that refer to it."""

    reference: Reference
    digest: str
    manifest: bytes
    referrers: list[Descriptor]


def list_referrers(
    ref: str, *, insecure_registries: Sequence[str] = (), auth: Credentials | None = None
) -> tuple[RemoteSubject, RegistryClient]:
    """Resolve ``ref`` to its digest and list its referrers (referrers API, else the fallback tag)."""
    parsed = parse_reference(ref)
    client = _client(parsed, insecure_registries, auth)
    scope = pull_scope(parsed.repository)
    r = client.get_manifest(parsed.repository, parsed.digest or parsed.tag, scope)
    manifest = r.content
    digest = sha256_digest(manifest)
    if parsed.digest and parsed.digest != digest:
        raise BuildError(f"{parsed}: registry sent a manifest with digest {digest}")
    api = client.send("GET", client.url(parsed.repository, f"referrers/{digest}"), scope, what="referrers")
    if api.status_code == 200 and api.headers.get("Content-Type", "").startswith(OCI_INDEX):
        listed = _descriptors(api.content, f"{parsed.name} referrers of {digest}")
    else:
        listed = _fallback_list(client, parsed.repository, referrers_tag(digest))
    return RemoteSubject(parsed, digest, manifest, listed), client


def fetch_document(client: RegistryClient, subject: RemoteSubject, descriptor: Descriptor) -> tuple[dict, bytes]:
    """An artifact's manifest (checked to refer to the subject) and its first document, each digest checked."""
    repository = subject.reference.repository
    scope = pull_scope(repository)
    data = client.get_manifest(repository, descriptor.digest, scope).content
    if sha256_digest(data) != descriptor.digest:
        raise BuildError(f"{subject.reference.name}@{descriptor.digest}: manifest does not match its digest")
    manifest = json.loads(data)
    if (manifest.get("subject") or {}).get("digest") != subject.digest:
        raise BuildError(f"{subject.reference.name}@{descriptor.digest}: its subject is not {subject.digest}")
    layers = manifest.get("layers") or []
    if not layers:
        raise UserInputError(f"{subject.reference.name}@{descriptor.digest}: artifact has no document")
    layer = layers[0]
    if int(layer.get("size", 0)) > MAX_DOCUMENT:
        raise BuildError(f"{subject.reference.name}: document {layer['digest']} larger than 64 MiB")
    r = client.get_blob(repository, layer["digest"], scope)
    body = r.content
    if sha256_digest(body) != layer["digest"]:
        raise BuildError(f"{subject.reference.name}: document {layer['digest']} does not match its digest")
    return manifest, body
