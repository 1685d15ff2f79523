"""The SBOM is made from the lock: every .deb, the interpreter, every Python distribution, the runner and the
weights, each with its sha256 and the layer that holds it; SPDX 2.3 checked by spdx-tools' own parser and
validator, CycloneDX 1.6 by cyclonedx-python-lib's schema validator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocibuild.attest.inventory import WeightEntry, components, image_layers
from ocibuild.attest.sbom import Subject, cyclonedx_document, spdx_document
from ocibuild.cog.lockfile import read_project_lock
from tests.attest.standin import standin_image
from tests.helpers import REPO

EXAMPLES = sorted(p.parent.name for p in (REPO / "examples").glob("*/ocibuild.lock"))
SUBJECT = Subject("example", "sha256:" + "ab" * 32, 1700000000, "ocibuild-test")


def _example(name: str):
    sections = read_project_lock(REPO / "examples" / name).sections()
    image = standin_image(sections)
    return sections, image, components(sections, image, "0.23.1")


def _spdx_packages(document: bytes, tmp_path: Path) -> list:
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    path = tmp_path / "sbom.spdx.json"
    path.write_bytes(document)
    parsed = parse_file(str(path))
    assert validate_full_spdx_document(parsed) == []
    return parsed.packages


def test_every_example_has_a_lock():
    assert {"hello-world", "gpu-torch", "torch-cpu"} <= set(EXAMPLES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_spdx_of_every_example_validates_and_lists_every_locked_package(name: str, tmp_path: Path):
    sections, _, found = _example(name)
    packages = _spdx_packages(spdx_document(SUBJECT, found), tmp_path)
    from packageurl import PackageURL

    sha = {}
    for package in packages:
        for ref in package.external_references:
            purl = PackageURL.from_string(ref.locator)
            sha[(purl.type, purl.name, purl.version)] = [c.value for c in package.checksums]
    base = sections["base"]["linux/amd64"]
    for deb in base["packages"] + (sections.get("debian") or {}).get("linux/amd64", {}).get("packages", []):
        assert sha[("deb", deb["name"], deb["version"])] == [deb["sha256"]], deb["name"]
    for dist in sections["python"]["linux/amd64"]["distributions"]:
        expected = [dist["sha256"]] if dist.get("sha256") else []
        assert sha[("pypi", dist["name"].lower(), dist["version"])] == expected, dist["name"]
    names = {p.name for p in packages}
    assert {"cpython", "cog", "example"} <= names
    # the image, the interpreter and the runner besides the lock's packages
    assert len(packages) == len(base["packages"]) + len(sections["python"]["linux/amd64"]["distributions"]) + 3


@pytest.mark.parametrize("name", EXAMPLES)
def test_cyclonedx_of_every_example_validates_against_the_1_6_schema(name: str):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    sections, _, found = _example(name)
    document = cyclonedx_document(SUBJECT, found)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(document.decode()) is None
    doc = json.loads(document)
    assert doc["specVersion"] == "1.6"
    assert doc["metadata"]["component"]["type"] == "container"
    from packageurl import PackageURL

    hashes = {}
    for c in doc["components"]:
        if c.get("purl") and c.get("hashes"):
            purl = PackageURL.from_string(c["purl"])
            hashes[(purl.type, purl.name, purl.version)] = c["hashes"][0]["content"]
    for dist in sections["python"]["linux/amd64"]["distributions"]:
        if dist.get("sha256"):
            assert hashes[("pypi", dist["name"].lower(), dist["version"])] == dist["sha256"]
    for deb in sections["base"]["linux/amd64"]["packages"]:
        assert hashes[("deb", deb["name"], deb["version"])] == deb["sha256"]


def test_each_component_names_the_layer_that_holds_it():
    _, image, found = _example("gpu-torch")
    layers = dict((digest, name) for name, digest in image_layers(image))
    assert all(c.layer in layers for c in found)
    torch = next(c for c in found if c.name == "torch")
    assert layers[torch.layer] == f"python: torch=={torch.version}"  # a large wheel has a layer of its own
    small = next(c for c in found if c.name == "filelock")
    assert layers[small.layer].endswith("distribution(s)")
    deb = next(c for c in found if c.kind == "deb")
    assert layers[deb.layer] == "base"
    runner = next(c for c in found if c.kind == "runner")
    assert layers[runner.layer] == "runner"


def test_a_split_wheel_is_held_by_its_first_part():
    sections = read_project_lock(REPO / "examples" / "gpu-torch").sections()
    torch = next(d for d in sections["python"]["linux/amd64"]["distributions"] if d["name"] == "torch")
    image = standin_image(sections, parts={f"python: torch=={torch['version']}": 3})
    layers = dict((digest, name) for name, digest in image_layers(image))
    found = next(c for c in components(sections, image, "0.23.1") if c.name == "torch")
    assert layers[found.layer] == found.layer_name == f"python: torch=={torch['version']} (part 1/3)"


def test_weights_are_listed_with_their_digest_and_layer(tmp_path: Path):
    sections, image, _ = _example("hello-world")
    weight = WeightEntry("/src/model.bin", 3, "sha256:" + "cd" * 32, "sha256:" + "ef" * 32)
    found = components(sections, image, "0.23.1", [weight])
    packages = _spdx_packages(spdx_document(SUBJECT, found), tmp_path)
    (listed,) = [p for p in packages if p.name == "/src/model.bin"]
    assert [c.value for c in listed.checksums] == ["cd" * 32]
    assert "sha256:" + "ef" * 32 in listed.comment
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    document = cyclonedx_document(SUBJECT, found)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(document.decode()) is None
    (data,) = [c for c in json.loads(document)["components"] if c["name"] == "/src/model.bin"]
    assert data["type"] == "data" and data["hashes"] == [{"alg": "SHA-256", "content": "cd" * 32}]


def test_a_local_wheel_url_is_no_download_location(tmp_path: Path):
    sections, image, _ = _example("hello-world")
    dist = dict(sections["python"]["linux/amd64"]["distributions"][0], url="file:///opt/wheels/x.whl")
    sections["python"]["linux/amd64"]["distributions"][0] = dist
    packages = _spdx_packages(spdx_document(SUBJECT, components(sections, image, "0.23.1")), tmp_path)
    listed = next(p for p in packages if p.name == dist["name"])
    assert str(listed.download_location) == "NOASSERTION" and "file:///opt/wheels/x.whl" in listed.comment


def test_documents_are_deterministic():
    _, _, found = _example("torch-cpu")
    assert spdx_document(SUBJECT, found) == spdx_document(SUBJECT, list(reversed(found)))
    assert cyclonedx_document(SUBJECT, found) == cyclonedx_document(SUBJECT, list(reversed(found)))
    created = json.loads(spdx_document(SUBJECT, found))["creationInfo"]["created"]
    assert created == "2023-11-14T22:13:20Z"  # SOURCE_DATE_EPOCH, not the clock


def test_declared_wheel_licences_go_into_both_formats(tmp_path: Path):
    sections, image, _ = _example("hello-world")
    dists = sections["python"]["linux/amd64"]["distributions"]
    licences = {dists[0]["sha256"]: "MIT OR Apache-2.0"}
    found = components(sections, image, "0.23.1", licences=licences)
    packages = _spdx_packages(spdx_document(SUBJECT, found), tmp_path)
    listed = next(p for p in packages if p.name == dists[0]["name"])
    assert str(listed.license_declared) == "MIT OR Apache-2.0"
    other = next(p for p in packages if p.name == dists[1]["name"])
    assert str(other.license_declared) == "NOASSERTION"
    doc = json.loads(cyclonedx_document(SUBJECT, found))
    (component,) = [c for c in doc["components"] if c["name"] == dists[0]["name"]]
    assert component["licenses"] == [{"expression": "MIT OR Apache-2.0"}]


def test_wheel_licence_from_metadata(tmp_path: Path):
    import zipfile

    from ocibuild.attest.licences import wheel_licence

    def wheel(name: str, metadata: str) -> Path:
        path = tmp_path / f"{name}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr(f"{name}-1.0.dist-info/METADATA", metadata)
        return path

    assert wheel_licence(wheel("a", "Name: a\nLicense-Expression: mit OR Apache-2.0\n")) == "MIT OR Apache-2.0"
    assert wheel_licence(wheel("b", "Name: b\nClassifier: License :: OSI Approved :: MIT License\n")) == "MIT"
    assert wheel_licence(wheel("c", "Name: c\nLicense: BSD-3-Clause\n")) == "BSD-3-Clause"
    assert wheel_licence(wheel("d", "Name: d\nLicense: Copyright (c) someone, all rights reserved\n")) is None
    two = "Classifier: License :: OSI Approved :: MIT License\nClassifier: License :: OSI Approved :: BSD License\n"
    assert wheel_licence(wheel("e", "Name: e\n" + two)) is None  # dual licence: not guessed
    (tmp_path / "broken.whl").write_bytes(b"not a zip")
    assert wheel_licence(tmp_path / "broken.whl") is None
