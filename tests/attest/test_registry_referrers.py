"""Attestations on a real registry (Debian's ``docker-registry``, which has no referrers API): pushed after the
image, listed by the fallback tag ``sha256-<hex>``, read back by ``ocibuild sbom/provenance REF`` and skopeo."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest
import requests

from ocibuild.oci.artifact import build_artifact, referrers_tag
from ocibuild.oci.descriptor import Descriptor
from ocibuild.registry.referrers import has_referrers_api, list_referrers, push_referrers
from tests.attest.conftest import build, ocibuild

pytestmark = pytest.mark.integration

SPDX, INTOTO = "application/spdx+json", "application/vnd.in-toto+json"


def _raw(ref: str) -> bytes:
    return subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"], capture_output=True, check=True
    ).stdout


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def pushed(attested, registry, attest_cache, tmp_path_factory):
    """hello-world built and pushed with --push; its reference and digest."""
    ref = f"{registry.host}/attest/hello:v1"
    layout = tmp_path_factory.mktemp("pushed") / "layout"
    built = build(attested.project, attest_cache, layout, "--push", "-t", ref)
    return ref, built


def test_push_keeps_the_image_digest_and_lists_both_documents_under_the_fallback_tag(pushed, attested, registry):
    ref, built = pushed
    assert built.digest == attested.digest
    assert _digest(_raw(ref)) == attested.digest  # the tag still names the image itself
    index = json.loads(_raw(f"{registry.host}/attest/hello:{referrers_tag(attested.digest)}"))
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert sorted(m["artifactType"] for m in index["manifests"]) == [SPDX, INTOTO]
    for entry in index["manifests"]:
        manifest = _raw(f"{registry.host}/attest/hello@{entry['digest']}")
        assert _digest(manifest) == entry["digest"]
        assert json.loads(manifest)["subject"]["digest"] == attested.digest


def test_sbom_and_provenance_commands_read_the_registry(pushed, attested):
    ref, _ = pushed
    provenance = ocibuild("provenance", ref)
    assert provenance.returncode == 0, provenance.stderr
    statement = json.loads(provenance.stdout)
    assert statement["subject"][0]["digest"]["sha256"] == attested.digest.removeprefix("sha256:")
    sbom = ocibuild("sbom", ref)
    assert sbom.returncode == 0, sbom.stderr
    assert sbom.stdout == ocibuild("sbom", str(attested.layout)).stdout


def test_pushing_a_layout_pushes_its_referrers_too(attested, registry):
    ref = f"{registry.host}/attest/from-layout:v1"
    result = ocibuild("push", str(attested.layout), ref)
    assert result.returncode == 0, result.stderr
    index = json.loads(_raw(f"{registry.host}/attest/from-layout:{referrers_tag(attested.digest)}"))
    assert sorted(m["artifactType"] for m in index["manifests"]) == [SPDX, INTOTO]
    again = ocibuild("push", str(attested.layout), ref)  # pushing again lists nothing twice
    assert again.returncode == 0, again.stderr
    assert json.loads(_raw(f"{registry.host}/attest/from-layout:{referrers_tag(attested.digest)}")) == index


def test_a_new_referrer_is_added_to_the_fallback_list(pushed, attested, registry):
    ref, _ = pushed
    subject = Descriptor("application/vnd.oci.image.manifest.v1+json", attested.digest, len(_raw(ref)))
    note = build_artifact("application/vnd.example.note", subject, [("text/plain", b"reviewed\n")])
    lines = push_referrers([note], [ref])
    tag = referrers_tag(attested.digest)
    assert lines == [f"{registry.host}/attest/hello:{tag}: 3 referrer(s) of {attested.digest}"]
    found, client = list_referrers(ref)
    assert found.digest == attested.digest
    assert sorted(d.artifact_type for d in found.referrers) == sorted([SPDX, INTOTO, "application/vnd.example.note"])
    assert not has_referrers_api(client, "attest/hello", attested.digest)


def test_an_image_without_attestations_is_a_one_line_error(bare, registry):
    ref = f"{registry.host}/attest/bare:v1"
    assert ocibuild("push", str(bare.layout), ref).returncode == 0
    result = ocibuild("sbom", ref)
    assert result.returncode == 2 and result.stderr.decode().count("\n") == 1, result.stderr
    assert "no application/spdx+json or application/vnd.cyclonedx+json attached" in result.stderr.decode()


def test_an_unreachable_registry_is_a_failed_command(attested):
    result = ocibuild("provenance", "127.0.0.1:9/attest/hello:v1")
    assert result.returncode == 1 and result.stderr.decode().count("\n") == 1, result.stderr


def test_a_registry_with_the_referrers_api_lists_them_itself(attested, registry, attest_cache, tmp_path):
    from tests.attest.referrers_proxy import ReferrersProxy

    with ReferrersProxy(registry.host) as api:
        ref = f"{api.host}/api/hello:v1"
        result = ocibuild(
            "build",
            str(attested.project),
            "-o",
            str(tmp_path / "layout"),
            "--cache-dir",
            str(attest_cache),
            "--push",
            "-t",
            ref,
        )
        assert result.returncode == 0, result.stderr
        assert f"referrers of {attested.digest} listed by the referrers API" in result.stderr.decode()
        listed = api.referrers[("api/hello", attested.digest)]
        assert sorted(d["artifactType"] for d in listed) == [SPDX, INTOTO]
        tags = requests.get(f"http://{registry.host}/v2/api/hello/tags/list", timeout=10).json()["tags"]
        assert tags == ["v1"]  # no fallback tag where the registry keeps the list
        sbom = ocibuild("sbom", ref)
        assert sbom.returncode == 0, sbom.stderr
        assert sbom.stdout == ocibuild("sbom", str(attested.layout)).stdout
