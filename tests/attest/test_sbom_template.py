"""A code change reuses the SBOM's template and the wheels' licences from the store; what it writes is exactly the
document the SBOM libraries would make for the new image (byte for byte, in both formats)."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from ocibuild.attest.inventory import components
from ocibuild.attest.licences import wheel_licences
from ocibuild.attest.sbom import CYCLONEDX, SPDX, Subject, sbom_document
from ocibuild.attest.sbom_template import sbom_bytes, template_key
from ocibuild.cog.lockfile import read_project_lock
from ocibuild.oci.store import Store
from tests.attest.standin import standin_image
from tests.helpers import REPO

SUBJECTS = [
    Subject("example", "sha256:" + "ab" * 32, 1700000000, "ocibuild-test"),
    Subject("other-name \u00e9", "sha256:" + "0c" * 32, 0, "ocibuild-test"),
    Subject("x", "sha256:" + "f1" * 32, 2000000001, "ocibuild-test"),
]


def _components(name: str):
    sections = read_project_lock(REPO / "examples" / name).sections()
    return components(sections, standin_image(sections), "0.23.1")


@pytest.mark.parametrize("fmt", [SPDX, CYCLONEDX])
@pytest.mark.parametrize("example", ["hello-world", "torch-cpu"])
def test_a_filled_template_is_the_document_the_library_makes(fmt: str, example: str, tmp_path: Path):
    store = Store(tmp_path / "store")
    found = _components(example)
    for subject in SUBJECTS:  # the first makes the template, the others fill it in
        assert sbom_bytes(fmt, subject, found, store) == sbom_document(fmt, subject, found), subject
    assert store.stats.key_hits == len(SUBJECTS) - 1


def test_the_template_key_follows_every_component_and_the_tool():
    found = _components("hello-world")
    key = template_key(SPDX, "ocibuild-test", found)
    assert key == template_key(SPDX, "ocibuild-test", list(reversed(found)))
    assert key != template_key(CYCLONEDX, "ocibuild-test", found)
    assert key != template_key(SPDX, "ocibuild-other", found)
    changed = [found[0].__class__(**{**found[0].__dict__, "licence": "MIT"}), *found[1:]]
    assert key != template_key(SPDX, "ocibuild-test", changed)


def test_wheel_licences_are_read_once_per_wheel(tmp_path: Path):
    store = Store(tmp_path / "store")
    dists = []
    for name, metadata in [("a", "License-Expression: MIT\n"), ("b", "License: all rights reserved\n")]:
        data_path = tmp_path / f"{name}.whl"
        with zipfile.ZipFile(data_path, "w") as zf:
            zf.writestr(f"{name}-1.0.dist-info/METADATA", f"Name: {name}\n{metadata}")
        sha = hashlib.sha256(data_path.read_bytes()).hexdigest()
        dist = {"kind": "wheel", "sha256": sha, "filename": f"{name}-1.0-py3-none-any.whl", "name": name}
        wheel = store.root / "wheels" / sha / dist["filename"]
        wheel.parent.mkdir(parents=True)
        data_path.rename(wheel)
        dists.append(dist)
    first = wheel_licences(dists, store)
    assert first == {dists[0]["sha256"]: "MIT"}
    for dist in dists:  # the answers now come from the store, not from the wheels
        (store.root / "wheels" / dist["sha256"] / dist["filename"]).write_bytes(b"not a zip any more")
    assert wheel_licences(dists, store) == first
