"""The attestations of a build as OCI artifacts whose subject is the image: an SBOM and SLSA provenance.

``attestations`` makes them from a ``BuildResult`` (its lock and plan); they go into the layout beside the image
(``write_layout(referrers=...)``) and to the registry after the image (``ocibuild.registry.referrers``). The store
keeps them by image digest, so an unchanged rebuild (the build memo) attaches the same bytes without rebuilding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ocibuild.oci.artifact import Artifact, build_artifact
from ocibuild.oci.canonical import rfc3339
from ocibuild.oci.descriptor import Descriptor
from ocibuild.oci.image import CREATED_ANNOTATION, Image, Index
from ocibuild.oci.store import Store

PREDICATE_ANNOTATION = "in-toto.io/predicate-type"
RECORD_PREFIX = "attest:"


def subject_descriptor(target: Image | Index) -> Descriptor:
    own = target.manifest_bytes if isinstance(target, Image) else target.index_bytes
    return Descriptor(target.media_type, target.digest, len(own))


def images_of(target: Image | Index) -> list[Image]:
    return [target] if isinstance(target, Image) else list(target.images)


def attestations(
    result: Any,
    store: Store,
    *,
    sbom: str = "spdx",
    provenance: bool = True,
    parameters: dict[str, Any] | None = None,
    verified_reproducible: bool = False,
    name: str = "",
) -> list[Artifact]:
    """The SBOM (unless ``sbom`` is ``none``) and provenance artifacts of a ``BuildResult``."""
    from ocibuild import __version__

    target, sections = result.target, result.lock.sections()
    name = name or result.loaded.project_dir.resolve().name
    subject = subject_descriptor(target)
    created = {CREATED_ANNOTATION: rfc3339(result.source_date_epoch)}
    out: list[Artifact] = []
    if sbom != "none":
        from ocibuild.attest.inventory import components
        from ocibuild.attest.licences import wheel_licences
        from ocibuild.attest.sbom import MEDIA_TYPES, Subject
        from ocibuild.attest.sbom_template import sbom_bytes
        from ocibuild.sources.runner import runner_version

        weights = _weight_entries(result.plan, store) + _managed_weight_entries(target)
        dists = [d for p in (sections.get("python") or {}).values() for d in p.get("distributions", [])]
        licences = wheel_licences(dists, store)
        found = [
            c for image in images_of(target) for c in components(sections, image, runner_version(), weights, licences)
        ]
        doc = sbom_bytes(
            sbom, Subject(name, target.digest, result.source_date_epoch, f"ocibuild-{__version__}"), found, store
        )
        out.append(build_artifact(MEDIA_TYPES[sbom], subject, [(MEDIA_TYPES[sbom], doc)], created))
    if provenance:
        from ocibuild.attest.provenance import MEDIA_TYPE, PREDICATE_TYPE, BuildFacts, provenance_statement

        subjects = [(name, target.digest)] + [(str(i.platform), i.digest) for i in images_of(target) if i is not target]
        facts = BuildFacts(
            subjects,
            result.loaded.path,
            result.lock.to_json(),
            dict(parameters or {}),
            __version__,
            dict(sections.get("recipes") or {}),
            verified_reproducible,
        )
        statement = provenance_statement(facts, sections)
        annotations = {**created, PREDICATE_ANNOTATION: PREDICATE_TYPE}
        out.append(build_artifact(MEDIA_TYPE, subject, [(MEDIA_TYPE, statement)], annotations))
    return out


def _weight_entries(plan: Any, store: Store) -> list:
    """Each weight file of the plan with its digest and layer (the packing is a store lookup after a build)."""
    from ocibuild.attest.inventory import WeightEntry

    if plan is None or not plan.weights:
        return []
    from ocibuild.sources.project.weights import pack_weights

    return [
        WeightEntry("/" + f.path.lstrip("/"), f.size, f.digest, packed.layer.digest)
        for packed in pack_weights(plan.weights, store)
        for f in packed.files
    ]


def _managed_weight_entries(target: Image | Index) -> list:
    """Each file of Cog's managed weights (artifact manifests in the index), from their config blobs."""
    import json

    from ocibuild.attest.inventory import WeightEntry
    from ocibuild.cogimage import WEIGHT_ARTIFACT_TYPE

    if not isinstance(target, Index) or not target.artifact_blobs:
        return []
    blobs = dict(target.artifact_blobs)
    out = []
    for entry in json.loads(target.index_bytes).get("manifests", []):
        manifest = blobs.get(entry["digest"]) if entry.get("artifactType") == WEIGHT_ARTIFACT_TYPE else None
        if not isinstance(manifest, bytes):
            continue
        config = blobs.get(json.loads(manifest)["config"]["digest"])
        if not isinstance(config, bytes):
            continue
        doc = json.loads(config)
        root = doc.get("target", "/").rstrip("/")
        out += [WeightEntry(f"{root}/{f['path']}", f["size"], f["digest"], f["layer"]) for f in doc.get("files", [])]
    return out


def remember(store: Store, key: str, artifacts: Sequence[Artifact]) -> None:
    """Keep ``artifacts`` in the store under ``key`` (the image digest and the options that shaped them)."""
    for artifact in artifacts:
        for _, data in artifact.blob_sources():
            store.put_bytes(data)
    if not artifacts:
        return
    first = artifacts[0]
    record = {
        "digest": first.digest,
        "size": len(first.manifest_bytes),
        "manifests": [[a.digest, a.artifact_type] for a in artifacts],
    }
    store.record(RECORD_PREFIX + key, record)


def recall(store: Store, key: str) -> list[Artifact] | None:
    """The artifacts kept under ``key``, or None when any of their blobs is gone."""
    import json

    from ocibuild.oci.digest import sha256_digest

    def read(digest: str) -> bytes:
        data = store.read_bytes(digest)
        if sha256_digest(data) != digest:
            raise ValueError(digest)
        return data

    record = store.lookup(RECORD_PREFIX + key)
    if record is None:
        return None
    try:
        out = []
        for digest, artifact_type in record["manifests"]:
            data = read(digest)
            manifest = json.loads(data)
            blobs = [manifest["config"], *manifest["layers"]]
            out.append(Artifact(data, tuple((b["digest"], read(b["digest"])) for b in blobs), artifact_type))
        return out
    except (OSError, ValueError, KeyError, TypeError):
        return None
