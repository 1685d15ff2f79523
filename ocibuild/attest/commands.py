"""The command-line side of attestations: build options, ``ocibuild sbom IMAGE`` and ``ocibuild provenance IMAGE``.

``cli.py`` calls in here with a few lines, so the attest machinery loads only when a build or command needs it.
IMAGE is an OCI layout directory, a dual tarball, or a registry reference (``REGISTRY/REPO:TAG`` or ``@sha256:``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ocibuild.errors import UserInputError
from ocibuild.oci.artifact import Artifact
from ocibuild.oci.store import Store

SBOM_TYPES = {"spdx": "application/spdx+json", "cyclonedx": "application/vnd.cyclonedx+json"}
PROVENANCE_TYPE = "application/vnd.in-toto+json"


def add_build_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sbom",
        choices=["spdx", "cyclonedx", "none"],
        default="spdx",
        help="attach an SBOM made from the lock (default spdx: SPDX 2.3 JSON; cyclonedx: CycloneDX 1.6)",
    )
    p.add_argument("--no-provenance", action="store_true", help="do not attach SLSA v1 provenance")


def add_commands(sub: Any, add_common: Any, add_registry_options: Any) -> None:
    """``ocibuild sbom`` and ``ocibuild provenance``."""
    for name, what in (("sbom", "the SBOM"), ("provenance", "the SLSA provenance")):
        p = sub.add_parser(name, help=f"print {what} attached to an image (layout, tarball or registry reference)")
        p.add_argument("image", help="an OCI layout, a dual tarball or REGISTRY/REPO:TAG")
        if name == "sbom":
            p.add_argument("--format", choices=["spdx", "cyclonedx"], help="which SBOM, when several are attached")
        add_registry_options(p)
        add_common(p)


def memo_key(target_digest: str, args: argparse.Namespace) -> str:
    return f"{target_digest}:{args.sbom}:{'no-provenance' if args.no_provenance else 'provenance'}"


def wanted(args: argparse.Namespace) -> bool:
    return args.sbom != "none" or not args.no_provenance


def recall(store: Store, target_digest: str, args: argparse.Namespace) -> list[Artifact] | None:
    """The attestations of an unchanged rebuild, from the store (None: build again to make them)."""
    if not wanted(args):
        return []
    from ocibuild.attest.attach import recall as recall_artifacts

    return recall_artifacts(store, memo_key(target_digest, args))


def build_attestations(result: Any, args: argparse.Namespace, store: Store, platforms: list[str]) -> list[Artifact]:
    """The SBOM and provenance artifacts of a finished build, kept in the store for the build memo."""
    if not wanted(args):
        return []
    from ocibuild.attest.attach import attestations, remember

    parameters = {
        "platforms": platforms,
        "format": args.format,
        "compression": args.compression,
        "sourceDateEpoch": result.source_date_epoch,
        "sbom": args.sbom,
    }
    try:
        artifacts = attestations(
            result,
            store,
            sbom=args.sbom,
            provenance=not args.no_provenance,
            parameters=parameters,
            verified_reproducible=bool(args.verify_reproducible),
        )
    except ValueError as exc:
        from ocibuild.errors import BuildError

        raise BuildError(f"attestations: {exc}") from None
    remember(store, memo_key(result.target.digest, args), artifacts)
    return artifacts


def layout_referrers(spec: str) -> list[Artifact]:
    """The artifacts an OCI layout directory lists beside its image (for ``ocibuild push``)."""
    path = Path(spec)
    if not path.is_dir():
        return []
    from ocibuild.oci.layout import read_blob, read_referrers

    out = []
    for descriptor, manifest in read_referrers(path):
        blobs = tuple((b["digest"], read_blob(path, b["digest"])) for b in [manifest["config"], *manifest["layers"]])
        out.append(Artifact(read_blob(path, descriptor.digest), blobs, descriptor.artifact_type))
    return out


def _types(args: argparse.Namespace) -> list[str]:
    if args.command == "provenance":
        return [PROVENANCE_TYPE]
    return [SBOM_TYPES[args.format]] if args.format else list(SBOM_TYPES.values())


def cmd_show(args: argparse.Namespace, store: Store) -> int:
    """``ocibuild sbom IMAGE`` / ``ocibuild provenance IMAGE``: print the attached document."""
    types = _types(args)
    path = Path(args.image)
    local = path.exists()
    if not local and args.image.startswith(("/", "./", "../", "~")):
        raise UserInputError(f"{args.image}: no such file or directory")
    document = _from_local(path, types, store) if local else _from_registry(args.image, types, args.insecure_registry)
    sys.stdout.buffer.write(document)
    sys.stdout.flush()
    return 0


def _from_local(path: Path, types: list[str], store: Store) -> bytes:
    from ocibuild.image_source import load_layout_or_archive
    from ocibuild.oci.layout import LayoutError, read_blob, read_referrers

    target = load_layout_or_archive(str(path), store)
    if not path.is_dir():
        raise UserInputError(f"{path}: a tarball carries no attestations; read them from the OCI layout")
    try:
        found = [(d, m) for d, m in read_referrers(path) if (m.get("subject") or {}).get("digest") == target.digest]
        for wanted_type in types:
            for descriptor, manifest in found:
                if descriptor.artifact_type == wanted_type and manifest.get("layers"):
                    return read_blob(path, manifest["layers"][0]["digest"])
    except LayoutError as exc:
        raise UserInputError(f"{path}: {exc}") from None
    raise UserInputError(f"{path}: no {' or '.join(types)} attached to {target.digest}")


def _from_registry(ref: str, types: list[str], insecure: list[str]) -> bytes:
    from ocibuild.registry.referrers import fetch_document, list_referrers

    subject, client = list_referrers(ref, insecure_registries=tuple(insecure))
    for wanted_type in types:
        for descriptor in subject.referrers:
            if descriptor.artifact_type == wanted_type:
                return fetch_document(client, subject, descriptor)[1]
    raise UserInputError(f"{ref}: no {' or '.join(types)} attached to {subject.digest}")
