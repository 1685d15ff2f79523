"""Cosign's signature tag on a registry: ``sha256-<hex>.sig``, an image manifest whose layers are signed payloads.

Each layer is a payload blob (``application/vnd.dev.cosign.simplesigning.v1+json``) with its base64 signature in
the ``dev.cosignproject.cosign/signature`` annotation; a new signature is appended to the layers already there,
as cosign does. containers/image reads this tag when ``use-sigstore-attachments`` is on for the registry.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from ocibuild.errors import BuildError
from ocibuild.oci.canonical import canonical_json
from ocibuild.oci.digest import digest_hex, sha256_digest
from ocibuild.oci.mediatypes import OCI_CONFIG, OCI_MANIFEST
from ocibuild.registry.auth import pull_scope, push_scope
from ocibuild.registry.client import RegistryClient
from ocibuild.registry.credentials import Credentials
from ocibuild.registry.progress import Progress
from ocibuild.registry.reference import Reference, parse_reference, uses_plain_http
from ocibuild.registry.upload import Blob, push_blob

SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PAYLOAD_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
MAX_PAYLOAD = 1 << 20


def signature_tag(digest: str) -> str:
    return f"sha256-{digest_hex(digest)}.sig"


@dataclass(frozen=True)
class Signed:
    """A registry image: its reference, manifest digest and the (payload, base64 signature) pairs found for it."""

    reference: Reference
    digest: str
    signatures: list[tuple[bytes, str]]


def _client(ref: Reference, insecure: Sequence[str], auth: Credentials | None) -> RegistryClient:
    return RegistryClient(ref.api_host, plain_http=uses_plain_http(ref.api_host, tuple(insecure)), credentials=auth)


def resolve_digest(client: RegistryClient, ref: Reference) -> str:
    """The digest of the manifest ``ref`` names now (checked when ``ref`` carries one)."""
    data = client.get_manifest(ref.repository, ref.digest or ref.tag, pull_scope(ref.repository)).content
    digest = sha256_digest(data)
    if ref.digest and ref.digest != digest:
        raise BuildError(f"{ref}: registry sent a manifest with digest {digest}")
    return digest


def _signature_manifest(client: RegistryClient, ref: Reference, digest: str) -> dict | None:
    r = client.send(
        "GET",
        client.url(ref.repository, f"manifests/{signature_tag(digest)}"),
        pull_scope(ref.repository),
        what="get signatures",
        headers={"Accept": OCI_MANIFEST},
    )
    if r.status_code == 404:
        return None
    if r.status_code != 200:
        raise client.fail(r, "get signatures")
    try:
        doc = json.loads(r.content[: 4 << 20])
        return doc if isinstance(doc, dict) else None
    except ValueError:
        raise BuildError(f"{ref.name}:{signature_tag(digest)}: not a manifest") from None


def push_signature(
    ref: str,
    digest: str,
    payload: bytes,
    signature_b64: str,
    *,
    insecure_registries: Sequence[str] = (),
    auth: Credentials | None = None,
) -> str:
    """Add one signature for ``digest`` to the signature tag of ``ref``'s repository; returns that tag's ref."""
    parsed = parse_reference(ref)
    client = _client(parsed, insecure_registries, auth)
    scope = push_scope(parsed.repository)
    existing = _signature_manifest(client, parsed, digest) or {}
    layers = [layer for layer in existing.get("layers", []) if isinstance(layer, dict)]
    payload_digest = sha256_digest(payload)
    mine = {
        "mediaType": PAYLOAD_MEDIA_TYPE,
        "digest": payload_digest,
        "size": len(payload),
        "annotations": {SIGNATURE_ANNOTATION: signature_b64},
    }
    if mine not in layers:
        layers.append(mine)
    config = canonical_json(
        {
            "architecture": "",
            "config": {},
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
        }
    )
    blobs = [Blob(payload_digest, len(payload), payload), Blob(sha256_digest(config), len(config), config)]
    for blob in blobs:
        push_blob(client, parsed.repository, blob, mount_from=None, chunk_size=None, progress=Progress())
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(config), "size": len(config)},
            "layers": layers,
        }
    )
    client.put_manifest(parsed.repository, signature_tag(digest), manifest, OCI_MANIFEST, scope)
    return f"{parsed.name}:{signature_tag(digest)}"


def fetch_signatures(
    ref: str, *, insecure_registries: Sequence[str] = (), auth: Credentials | None = None
) -> tuple[Signed, RegistryClient]:
    """The image ``ref`` names now and every signature its signature tag holds (payload digests checked)."""
    parsed = parse_reference(ref)
    client = _client(parsed, insecure_registries, auth)
    digest = resolve_digest(client, parsed)
    manifest = _signature_manifest(client, parsed, digest) or {}
    found = []
    for layer in manifest.get("layers", []):
        signature = (layer.get("annotations") or {}).get(SIGNATURE_ANNOTATION)
        if layer.get("mediaType") != PAYLOAD_MEDIA_TYPE or not signature or int(layer.get("size", 0)) > MAX_PAYLOAD:
            continue
        body = client.get_blob(parsed.repository, layer["digest"], pull_scope(parsed.repository)).content
        if sha256_digest(body) != layer["digest"]:
            raise BuildError(f"{parsed.name}: signature payload {layer['digest']} does not match its digest")
        found.append((body, signature))
    return Signed(parsed, digest, found), client
