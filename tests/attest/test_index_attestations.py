"""A multi-platform build: one SBOM and one provenance for the index, covering every platform's image."""

from __future__ import annotations

import copy
import hashlib
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


def test_managed_weights_are_listed_with_their_digest_and_layer(tmp_path):
    from ocibuild.sources.project.managed_weights import managed_weights_artifacts
    from ocibuild.sources.project.weights import WeightSource, WeightSpec, resolve_weight_specs

    project = tmp_path / "model"
    (project / "weights").mkdir(parents=True)
    (project / "weights" / "config.json").write_bytes(b'{"a":1}')
    store = Store(tmp_path / "store")
    spec = WeightSpec("base-model", "/src/weights", (WeightSource("weights"),))
    weight_sets = resolve_weight_specs([spec], project, store)[0]
    descriptors, blobs, _ = managed_weights_artifacts(weight_sets, store)
    result = _two_platform_result(tmp_path)
    result.target = build_index(list(result.target.images), artifacts=descriptors, artifact_blobs=blobs)
    sbom, _ = attestations(result, store)
    packages = json.loads(sbom.blobs[-1][1])["packages"]
    listed = [p for p in packages if p["name"] == "/src/weights/config.json"]
    assert len(listed) == 2  # one per platform's image, both naming the weight manifest's layer
    assert listed[0]["checksums"][0]["checksumValue"] == hashlib.sha256(b'{"a":1}').hexdigest()
    manifest = json.loads(dict(blobs)[descriptors[0].digest])
    assert manifest["layers"][0]["digest"] in listed[0]["comment"]
