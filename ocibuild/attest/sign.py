"""Cosign-compatible image signatures ("simple signing" payloads signed with an ECDSA P-256 key, SHA-256).

The payload names the image by its manifest digest and its reference; the signature is ASN.1 DER, base64 in the
``dev.cosignproject.cosign/signature`` annotation of a layer of the ``sha256-<hex>.sig`` manifest. That is what
cosign writes and what containers/image (podman, skopeo) checks under a ``sigstoreSigned`` policy.

Keys are PEM files: a PKCS#8 or SEC1 EC private key (encrypted ones take the password from ``$COSIGN_PASSWORD``)
and a SubjectPublicKeyInfo public key. cosign's own encrypted key format (scrypt + secretbox) is not read.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocibuild.errors import BuildError, UserInputError

PAYLOAD_TYPE = "cosign container image signature"
PAYLOAD_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"


def simple_signing_payload(docker_reference: str, digest: str) -> bytes:
    """The payload cosign signs: the image's reference and manifest digest (compact JSON, as cosign writes it)."""
    doc = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": PAYLOAD_TYPE,
        },
        "optional": None,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def load_private_key(path: Path) -> Any:
    """An EC private key from a PEM file; a one-line error for anything else."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    data = _read_key(path)
    if b"ENCRYPTED SIGSTORE PRIVATE KEY" in data or b"ENCRYPTED COSIGN PRIVATE KEY" in data:
        raise UserInputError(
            f"--key {path}: cosign's encrypted key format is not supported; "
            "export a PKCS#8 PEM key (e.g. openssl ecparam -genkey -name prime256v1 | openssl pkcs8 -topk8 -nocrypt)"
        )
    password = os.environ.get("COSIGN_PASSWORD")
    try:
        key = load_pem_private_key(data, password.encode() if password else None)
    except (ValueError, TypeError) as exc:
        raise UserInputError(f"--key {path}: not a usable PEM private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise UserInputError(f"--key {path}: an EC (P-256) key is needed, as cosign uses")
    return key


def load_public_key(path: Path) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(_read_key(path))
    except ValueError as exc:
        raise UserInputError(f"--key {path}: not a PEM public key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise UserInputError(f"--key {path}: an EC (P-256) public key is needed")
    return key


def _read_key(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UserInputError(f"--key {path}: cannot read it ({exc.strerror})") from None


def sign_payload(key: Any, payload: bytes) -> str:
    """The base64 ECDSA-SHA256 (DER) signature of ``payload``."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    return base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()


@dataclass(frozen=True)
class Verified:
    """A signature that checked: the reference its payload names."""

    docker_reference: str


def verify_payload(key: Any, payload: bytes, signature_b64: str, digest: str, repository: str) -> Verified:
    """Check one signature and that its payload names ``digest`` in ``repository``; BuildError if not."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key.verify(base64.b64decode(signature_b64, validate=True), payload, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise BuildError("signature does not verify with the given key") from None
    try:
        critical = json.loads(payload)["critical"]
        named, reference = critical["image"]["docker-manifest-digest"], critical["identity"]["docker-reference"]
        kind = critical["type"]
    except (ValueError, KeyError, TypeError):
        raise BuildError("signed payload is not a simple signing document") from None
    if kind != PAYLOAD_TYPE:
        raise BuildError(f"signed payload has type {kind!r}")
    if named != digest:
        raise BuildError(f"signature is for {named}, not {digest}")
    from ocibuild.registry.reference import parse_reference

    try:
        signed_name = parse_reference(reference, default_tag="").name
    except UserInputError:
        signed_name = ""
    if signed_name != repository:
        raise BuildError(f"signature names {reference}, not {repository}")
    return Verified(reference)
