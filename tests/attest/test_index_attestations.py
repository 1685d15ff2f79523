"""A multi-platform build: one SBOM and one provenance for the index, covering every platform's image."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace

from ocibuild.attest.attach import attestations
from ocibuild.cog.lockfile import ProjectLock, read_project_lock
from ocibuild.oci import Store
from ocibuild.oci.image import build_index
from tests.attest.standin import standin_image
from tests.helpers import REPO


def _two_platform_result(tmp_path):
    lock = read_project_lock(REPO / "examples" / "hello-world")
    sections = lock.sections()
    for name in ("base", "python"):
        sections[name]["linux/arm64"] = copy.deepcopy(sections[name]["linux/amd64"])
    both = ProjectLock(**{k: sections.get(k) for k in ("base", "debian", "python", "weights", "recipes")})
    images = [standin_image(sections, "linux/amd64"), standin_image(sections, "linux/arm64")]
    loaded = SimpleNamespace(path=REPO / "examples" / "hello-world" / "cog.yaml", project_dir=tmp_path / "model")
    return SimpleNamespace(target=build_index(images), lock=both, plan=None, source_date_epoch=0, loaded=loaded)


def test_index_subjects_and_components_of_every_platform(tmp_path):
    result = _two_platform_result(tmp_path)
    sbom, provenance = attestations(result, Store(tmp_path / "store"))
    for artifact in (sbom, provenance):
        assert artifact.subject == result.target.digest
    statement = json.loads(provenance.blobs[-1][1])
    names = [(s["name"], "sha256:" + s["digest"]["sha256"]) for s in statement["subject"]]
    assert names == [("model", result.target.digest)] + [(str(i.platform), i.digest) for i in result.target.images]
    document = json.loads(sbom.blobs[-1][1])
    comments = [p.get("comment", "") for p in document["packages"]]
    per_platform = len(result.lock.base["linux/amd64"]["packages"])
    assert sum(" on linux/arm64," in c for c in comments) == sum(" on linux/amd64," in c for c in comments)
    assert sum(" on linux/arm64," in c for c in comments) > per_platform
