"""Cosign-compatible signatures: ``ocibuild sign`` writes the ``sha256-<hex>.sig`` tag, ``ocibuild verify`` checks
it and the provenance; openssl verifies the signature independently; skopeo's ``sigstoreSigned`` policy accepts
the signed tag and rejects it once it names another image (where skopeo is built with sigstore support)."""

from __future__ import annotations

import base64
import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from ocibuild.oci import Compression, Entry, ImageConfig, Store, build_image, write_layer
from ocibuild.registry import Progress, push
from ocibuild.registry.signatures import signature_tag
from tests.attest.conftest import build, ocibuild

pytestmark = pytest.mark.integration


def _openssl(*args: str, stdin: bytes | None = None) -> bytes:
    if not shutil.which("openssl"):
        pytest.skip("openssl missing")
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=True).stdout


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> tuple[Path, Path]:
    """A P-256 key pair as cosign uses, in PEM (PKCS#8 private, SubjectPublicKeyInfo public)."""
    root = tmp_path_factory.mktemp("keys")
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(root / "key.pem"))
    _openssl("pkey", "-in", str(root / "key.pem"), "-pubout", "-out", str(root / "pub.pem"))
    return root / "key.pem", root / "pub.pem"


@pytest.fixture(scope="module")
def signed(attested, registry, keys) -> str:
    ref = f"{registry.host}/signed/hello:v1"
    assert ocibuild("push", str(attested.layout), ref, "-q").returncode == 0
    result = ocibuild("sign", ref, "--key", str(keys[0]))
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == f"{ref}@{attested.digest}\n"
    return ref


def _other_image(tmp_path: Path):
    store = Store(tmp_path / "store")
    rng = random.Random(7)
    layer = write_layer([Entry.file("other.bin", rng.randbytes(1024))], store, Compression.GZIP)
    return build_image([layer], ImageConfig())


def _sig_manifest(registry, repository: str, digest: str) -> dict:
    url = f"http://{registry.host}/v2/{repository}/manifests/{signature_tag(digest)}"
    return requests.get(url, headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}, timeout=10).json()


def test_verify_accepts_the_signed_image(signed, attested, keys):
    result = ocibuild("verify", signed, "--key", str(keys[1]))
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == f"{signed}@{attested.digest}\n"


def test_openssl_verifies_the_cosign_payload(signed, attested, registry, keys, tmp_path):
    manifest = _sig_manifest(registry, "signed/hello", attested.digest)
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
    url = f"http://{registry.host}/v2/signed/hello/blobs/{layer['digest']}"
    payload = requests.get(url, timeout=10).content
    assert json.loads(payload) == {
        "critical": {
            "identity": {"docker-reference": f"{registry.host}/signed/hello:v1"},
            "image": {"docker-manifest-digest": attested.digest},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
    (tmp_path / "payload").write_bytes(payload)
    signature = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
    (tmp_path / "sig").write_bytes(signature)
    out = _openssl(
        "dgst", "-sha256", "-verify", str(keys[1]), "-signature", str(tmp_path / "sig"), str(tmp_path / "payload")
    )
    assert out.strip() == b"Verified OK"


def test_signing_twice_keeps_one_signature(signed, attested, registry, keys):
    assert ocibuild("sign", signed, "--key", str(keys[0])).returncode == 0
    layers = _sig_manifest(registry, "signed/hello", attested.digest)["layers"]
    assert len(layers) == 2  # ECDSA signatures differ each time; both are kept, as cosign keeps them
    assert ocibuild("verify", signed, "--key", str(keys[1])).returncode == 0


def test_verify_fails_with_another_key(signed, tmp_path):
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(tmp_path / "k.pem"))
    _openssl("pkey", "-in", str(tmp_path / "k.pem"), "-pubout", "-out", str(tmp_path / "p.pem"))
    result = ocibuild("verify", signed, "--key", str(tmp_path / "p.pem"))
    assert result.returncode == 1 and result.stderr.decode().count("\n") == 1, result.stderr
    assert "does not verify" in result.stderr.decode()


def test_verify_fails_when_the_tag_names_a_tampered_manifest(attested, registry, keys, tmp_path):
    ref = f"{registry.host}/signed/tamper:v1"
    assert ocibuild("push", str(attested.layout), ref, "-q").returncode == 0
    assert ocibuild("sign", ref, "--key", str(keys[0])).returncode == 0
    assert ocibuild("verify", ref, "--key", str(keys[1])).returncode == 0
    push(_other_image(tmp_path), [ref], progress=Progress())  # the same tag now names another manifest
    result = ocibuild("verify", ref, "--key", str(keys[1]))
    assert result.returncode == 1 and "no signature for sha256:" in result.stderr.decode(), result.stderr


def test_verify_requires_provenance_naming_the_image(bare, registry, keys):
    ref = f"{registry.host}/signed/bare:v1"
    assert ocibuild("push", str(bare.layout), ref, "-q").returncode == 0
    assert ocibuild("sign", ref, "--key", str(keys[0])).returncode == 0
    result = ocibuild("verify", ref, "--key", str(keys[1]))
    assert result.returncode == 1 and "no application/vnd.in-toto+json attached" in result.stderr.decode()
    assert ocibuild("verify", ref, "--key", str(keys[1]), "--signature-only").returncode == 0


def test_build_push_with_sign_key_signs(attested, registry, keys, attest_cache, tmp_path):
    ref = f"{registry.host}/signed/built:v1"
    built = build(attested.project, attest_cache, tmp_path / "layout", "--push", "-t", ref, "--sign-key", str(keys[0]))
    assert built.digest == attested.digest
    assert ocibuild("verify", ref, "--key", str(keys[1])).returncode == 0


def test_unusable_keys_are_one_line_errors(attested, keys, tmp_path):
    (tmp_path / "cosign.key").write_text("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nxx\n")
    for key, message in [
        (tmp_path / "missing.pem", "cannot read it"),
        (tmp_path / "cosign.key", "cosign's encrypted key format is not supported"),
        (keys[1], "not a usable PEM private key"),
    ]:
        result = ocibuild("sign", "127.0.0.1:9/x/y:v1", "--key", str(key))
        assert result.returncode == 2 and message in result.stderr.decode(), result.stderr
        assert result.stderr.decode().count("\n") == 1
    no_push = ocibuild("build", str(attested.project), "--sign-key", str(keys[0]), "-o", str(tmp_path / "o"))
    assert no_push.returncode == 2 and "add --push" in no_push.stderr.decode()


def _skopeo_copy(registry, ref: str, pub: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    if not shutil.which("skopeo"):
        pytest.skip("skopeo missing")
    registries_d = tmp_path / "registries.d"
    registries_d.mkdir(exist_ok=True)
    (registries_d / "default.yaml").write_text(f"docker:\n  {registry.host}:\n    use-sigstore-attachments: true\n")
    requirement = {"type": "sigstoreSigned", "keyPath": str(pub), "signedIdentity": {"type": "matchRepoDigestOrExact"}}
    policy = {"default": [{"type": "reject"}], "transports": {"docker": {registry.host: [requirement]}}}
    (tmp_path / "policy.json").write_text(json.dumps(policy))
    dest = tmp_path / "copy"
    shutil.rmtree(dest, ignore_errors=True)
    result = subprocess.run(
        [
            "skopeo",
            "--policy",
            str(tmp_path / "policy.json"),
            "--registries.d",
            str(registries_d),
            "copy",
            "--src-tls-verify=false",
            f"docker://{ref}",
            f"oci:{dest}:x",
        ],
        capture_output=True,
        text=True,
    )
    if "sigstore disabled" in result.stderr:
        pytest.skip("this skopeo is built without sigstore support (Debian-local change: sigstore disabled)")
    return result


def test_skopeo_sigstore_policy_accepts_the_signed_tag_and_rejects_it_retagged(attested, registry, keys, tmp_path):
    ref = f"{registry.host}/signed/policy:v1"
    assert ocibuild("push", str(attested.layout), ref, "-q").returncode == 0
    assert ocibuild("sign", ref, "--key", str(keys[0])).returncode == 0
    accepted = _skopeo_copy(registry, ref, keys[1], tmp_path)
    assert accepted.returncode == 0, accepted.stderr
    push(_other_image(tmp_path), [ref], progress=Progress())
    rejected = _skopeo_copy(registry, ref, keys[1], tmp_path)
    assert rejected.returncode != 0 and "signature" in rejected.stderr.lower()
