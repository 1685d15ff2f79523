"""A build writes its SBOM and provenance into the OCI layout as referrers of the image, whose digest does not
change; ``ocibuild sbom`` and ``ocibuild provenance`` print them back; the layout stays valid for skopeo."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess

import pytest

from ocibuild.cog.files import default_image_name
from ocibuild.cog.lockfile import read_project_lock
from tests.attest.conftest import build, ocibuild
from tests.oci.imagecheck import check_layout

pytestmark = pytest.mark.integration  # builds hello-world: the store's .debs and wheels, else the network


def _index(layout) -> list[dict]:
    return json.loads((layout / "index.json").read_text())["manifests"]


def _blob(layout, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def test_attachments_do_not_change_the_image_digest(attested, bare):
    assert attested.digest == bare.digest
    assert [m["digest"] for m in _index(bare.layout)] == [bare.digest]


def test_layout_lists_sbom_and_provenance_whose_subject_is_the_image(attested):
    image, *artifacts = _index(attested.layout)
    assert image["digest"] == attested.digest and "artifactType" not in image
    assert sorted(a["artifactType"] for a in artifacts) == ["application/spdx+json", "application/vnd.in-toto+json"]
    for entry in artifacts:
        manifest = json.loads(_blob(attested.layout, entry["digest"]))
        assert manifest["subject"]["digest"] == attested.digest
        assert manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
        assert manifest["layers"][0]["mediaType"] == entry["artifactType"]
    check_layout(attested.layout)  # every blob and manifest checked, artifacts included


def test_skopeo_still_reads_the_image_by_its_tag(attested):
    if not shutil.which("skopeo"):
        pytest.skip("skopeo missing")
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", f"oci:{attested.layout}:latest"], capture_output=True, check=True
    ).stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == attested.digest
    # containers/image takes an untagged oci:DIR only when index.json lists one manifest, whatever its type:
    # the README and docs/attest.md say to name the tag (or build without attestations); this says when to update them.
    untagged = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{attested.layout}"], capture_output=True, text=True)
    assert untagged.returncode != 0 and "more than one image in oci" in untagged.stderr, untagged.stderr


def test_sbom_command_prints_a_valid_spdx_document_from_the_layout(attested, tmp_path):
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    result = ocibuild("sbom", str(attested.layout))
    assert result.returncode == 0, result.stderr
    (tmp_path / "sbom.spdx.json").write_bytes(result.stdout)
    document = parse_file(str(tmp_path / "sbom.spdx.json"))
    assert validate_full_spdx_document(document) == []
    lock = read_project_lock(attested.project).sections()
    checksums = {c.value for p in document.packages for c in p.checksums}
    assert {p["sha256"] for p in lock["base"]["linux/amd64"]["packages"]} <= checksums
    assert {d["sha256"] for d in lock["python"]["linux/amd64"]["distributions"]} <= checksums
    assert attested.digest.removeprefix("sha256:") in checksums  # the image itself
    declared = {p.name: str(p.license_declared) for p in document.packages}
    assert declared["requests"] == "Apache-2.0" and declared["urllib3"] == "MIT"  # from the wheels' METADATA
    assert declared["bash"] == "NOASSERTION"  # Debian copyright files are not read


def test_provenance_command_prints_the_statement_of_the_build(attested):
    result = ocibuild("provenance", str(attested.layout))
    assert result.returncode == 0, result.stderr
    statement = json.loads(result.stdout)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    assert statement["subject"][0]["digest"]["sha256"] == attested.digest.removeprefix("sha256:")
    definition = statement["predicate"]["buildDefinition"]
    external = definition["externalParameters"]
    lock_bytes = (attested.project / "ocibuild.lock").read_bytes()
    assert external["lock"]["digest"]["sha256"] == hashlib.sha256(lock_bytes).hexdigest()
    cog_yaml = (attested.project / "cog.yaml").read_bytes()
    assert external["cogYaml"]["digest"]["sha256"] == hashlib.sha256(cog_yaml).hexdigest()
    assert external["source"] == {
        "uri": "git+https://example.com/models/hello.git",
        "digest": {"gitCommit": attested.commit},
        "dirty": False,
    }
    assert external["platforms"] == ["linux/amd64"] and external["compression"] == "gzip"
    assert external["sourceDateEpoch"] == 1700000000  # the commit time
    resolved = {d["digest"].get("sha256") for d in definition["resolvedDependencies"]}
    lock = read_project_lock(attested.project).sections()
    assert {p["sha256"] for p in lock["base"]["linux/amd64"]["packages"]} <= resolved
    assert {d["sha256"] for d in lock["python"]["linux/amd64"]["distributions"]} <= resolved


def test_unchanged_rebuild_writes_the_same_attestations(attested, attest_cache, tmp_path):
    layout = tmp_path / "layout"
    again = build(attested.project, attest_cache, layout)  # the build memo answers, attestations from the store
    assert again.digest == attested.digest
    assert (layout / "index.json").read_bytes() == (attested.layout / "index.json").read_bytes()


def test_cyclonedx_on_request(attested, attest_cache, tmp_path):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    layout = tmp_path / "layout"
    built = build(attested.project, attest_cache, layout, "--sbom", "cyclonedx")
    assert built.digest == attested.digest
    result = ocibuild("sbom", str(layout), "--format", "cyclonedx")
    assert result.returncode == 0, result.stderr
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(result.stdout.decode()) is None
    wrong = ocibuild("sbom", str(layout), "--format", "spdx")
    assert wrong.returncode == 2 and wrong.stderr.decode().count("\n") == 1, wrong.stderr
    assert "no application/spdx+json attached" in wrong.stderr.decode()


def test_a_layout_without_attestations_is_a_one_line_error(bare, tmp_path):
    result = ocibuild("provenance", str(bare.layout))
    assert result.returncode == 2 and result.stderr.decode().count("\n") == 1, result.stderr
    missing = ocibuild("sbom", str(tmp_path / "nothing-here"))
    assert missing.returncode == 2 and "no such file or directory" in missing.stderr.decode()


def test_tarball_carries_the_attestations_too(attested, attest_cache, tmp_path):
    tarball = tmp_path / "image.tar"
    built = build(attested.project, attest_cache, tmp_path / "layout", "--tarball", str(tarball))
    assert built.digest == attested.digest
    result = ocibuild("provenance", str(tarball), "--cache-dir", str(attest_cache))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["subject"][0]["digest"]["sha256"] == attested.digest.removeprefix("sha256:")
    if shutil.which("skopeo"):
        name = default_image_name(attested.project / "cog.yaml", None)  # no -t, no image:: the folder's name
        ref = f"oci-archive:{tarball}:{name}:latest"
        raw = subprocess.run(["skopeo", "inspect", "--raw", ref], capture_output=True, check=True).stdout
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == attested.digest


def test_weights_are_listed_with_their_sha256_and_layer(hello_project, attest_cache, tmp_path):
    project = tmp_path / "weighted"
    shutil.copytree(hello_project, project, ignore=shutil.ignore_patterns(".git", ".ocibuild"))
    data = hashlib.sha256(b"seed").digest() * ((10 << 20) // 32 + 1)
    (project / "weights").mkdir()
    (project / "weights" / "model.bin").write_bytes(data)
    result = ocibuild("build", str(project), "-o", str(tmp_path / "layout"), "--cache-dir", str(attest_cache), "-q")
    assert result.returncode == 0, result.stderr
    document = json.loads(ocibuild("sbom", str(tmp_path / "layout")).stdout)
    (weight,) = [p for p in document["packages"] if p["name"] == "/src/weights/model.bin"]
    assert weight["checksums"] == [{"algorithm": "SHA256", "checksumValue": hashlib.sha256(data).hexdigest()}]
    assert weight["primaryPackagePurpose"] == "FILE"
    image_digest = result.stdout.decode().strip().rsplit("@", 1)[1]
    layers = [layer["digest"] for layer in json.loads(_blob(tmp_path / "layout", image_digest))["layers"]]
    assert weight["comment"].split("layer ")[1].split(" ")[0] == layers[-1]  # the weights layer, last


@pytest.mark.parametrize("fmt", ["oci", "docker"])
def test_a_new_commit_with_the_same_files_gets_provenance_naming_it(hello_project, attest_cache, tmp_path, fmt):
    from tests.attest.conftest import _git

    project = tmp_path / "copy"
    shutil.copytree(hello_project, project, ignore=shutil.ignore_patterns(".ocibuild"))
    options = ("--source-date-epoch", "1700000000", "--format", fmt)
    first = build(project, attest_cache, tmp_path / "one", *options)
    _git(project, "commit", "-q", "--allow-empty", "-m", "nothing changed")
    second = build(project, attest_cache, tmp_path / "two", *options)
    assert second.commit != first.commit
    if fmt == "docker":  # no annotations, so no revision in the image: the same digest
        assert second.digest == first.digest
    statement = json.loads(ocibuild("provenance", str(tmp_path / "two")).stdout)
    assert statement["predicate"]["buildDefinition"]["externalParameters"]["source"]["digest"] == {
        "gitCommit": second.commit
    }
