"""The command-line side of attestations: build options, ``ocibuild sbom|provenance IMAGE``, ``ocibuild sign|verify``.

``cli.py`` calls in here with a few lines, so the attest machinery loads only when a build or command needs it.
IMAGE is an OCI layout directory, a dual tarball, or a registry reference (``REGISTRY/REPO:TAG`` or ``@sha256:``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ocibuild.attest.provenance import MEDIA_TYPE as PROVENANCE_TYPE
from ocibuild.attest.sbom import FORMATS as SBOM_FORMATS
from ocibuild.attest.sbom import MEDIA_TYPES as SBOM_TYPES
from ocibuild.errors import UserInputError
from ocibuild.oci.artifact import Artifact
from ocibuild.oci.store import Store


def add_build_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sbom",
        choices=[*SBOM_FORMATS, "none"],
        default="spdx",
        help="attach an SBOM made from the lock (default spdx: SPDX 2.3 JSON; cyclonedx: CycloneDX 1.6)",
    )
    p.add_argument("--no-provenance", action="store_true", help="do not attach SLSA v1 provenance")


def add_sign_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sign-key", type=Path, help="after pushing, sign each reference with this PEM EC private key")


def check_sign_key(args: argparse.Namespace) -> None:
    """Refuse an unusable ``--sign-key`` (or one without ``--push``) before any work is done."""
    if getattr(args, "sign_key", None) is None:
        return
    if getattr(args, "push", True) is False:
        raise UserInputError("--sign-key: signatures live in the registry; add --push")
    from ocibuild.attest.sign import load_private_key

    load_private_key(args.sign_key)


def add_commands(sub: Any, add_common: Any, add_registry_options: Any) -> None:
    """``ocibuild sbom``, ``ocibuild provenance``, ``ocibuild sign`` and ``ocibuild verify``."""
    sign = sub.add_parser("sign", help="sign a pushed image (cosign-compatible; podman/skopeo sigstoreSigned)")
    sign.add_argument("image", help="REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:...")
    sign.add_argument("--key", type=Path, required=True, help="PEM EC (P-256) private key ($COSIGN_PASSWORD)")
    add_registry_options(sign)
    add_common(sign)
    verify = sub.add_parser("verify", help="check an image's signature and that its provenance names it")
    verify.add_argument("image", help="REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:...")
    verify.add_argument("--key", type=Path, required=True, help="PEM public key")
    verify.add_argument("--signature-only", action="store_true", help="do not require SLSA provenance")
    add_registry_options(verify)
    add_common(verify)
    for name, what in (("sbom", "the SBOM"), ("provenance", "the SLSA provenance")):
        p = sub.add_parser(name, help=f"print {what} attached to an image (layout, tarball or registry reference)")
        p.add_argument("image", help="an OCI layout, a dual tarball or REGISTRY/REPO:TAG")
        if name == "sbom":
            p.add_argument("--format", choices=SBOM_FORMATS, help="which SBOM, when several are attached")
        add_registry_options(p)
        add_common(p)


def memo_key(target_digest: str, args: argparse.Namespace, project: Path) -> str:
    """The store key of a build's attestations: the image, the options and (for provenance) the git commit."""
    if args.no_provenance:
        return f"{target_digest}:{args.sbom}:no-provenance"
    from ocibuild.attest.provenance import git_commit

    return f"{target_digest}:{args.sbom}:provenance:{git_commit(project) or ''}"


def wanted(args: argparse.Namespace) -> bool:
    return args.sbom != "none" or not args.no_provenance


def recall(store: Store, target_digest: str, args: argparse.Namespace, project: Path) -> list[Artifact] | None:
    """The attestations of an unchanged rebuild, from the store (None: build again to make them)."""
    if not wanted(args):
        return []
    from ocibuild.attest.attach import recall as recall_artifacts

    return recall_artifacts(store, memo_key(target_digest, args, project))


def build_attestations(result: Any, args: argparse.Namespace, store: Store, platforms: list[str]) -> list[Artifact]:
    """The SBOM and provenance artifacts of a finished build, kept in the store for the build memo."""
    if not wanted(args):
        return []
    from ocibuild.attest.attach import attestations, remember

    parameters = {
        "platforms": platforms,
        "format": args.format,
        "compression": result.plan.compression.value if result.plan else args.compression,
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
    remember(store, memo_key(result.target.digest, args, result.loaded.project_dir), artifacts)
    return artifacts


def _layout_dir(path: Path, store: Store) -> Path:
    """``path`` itself for a layout directory, else the layout inside a dual tarball."""
    if path.is_dir():
        return path
    from ocibuild.image_source import archive_layout

    return archive_layout(path, store)


def layout_referrers(spec: str, store: Store) -> list[Artifact]:
    """The artifacts a layout (or dual tarball) lists beside its image (for ``ocibuild push``)."""
    from ocibuild.oci.layout import read_blob, read_referrers

    path = _layout_dir(Path(spec), store)

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
    layout = _layout_dir(path, store)
    try:
        found = [(d, m) for d, m in read_referrers(layout) if (m.get("subject") or {}).get("digest") == target.digest]
        for wanted_type in types:
            for descriptor, manifest in found:
                if descriptor.artifact_type == wanted_type and manifest.get("layers"):
                    return read_blob(layout, manifest["layers"][0]["digest"])
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


def sign_refs(refs: list[str], key_path: Path, insecure: list[str]) -> list[str]:
    """Sign what each reference names now; returns ``REF@digest`` for each."""
    from ocibuild.attest.sign import load_private_key, sign_payload, simple_signing_payload
    from ocibuild.registry.reference import parse_reference
    from ocibuild.registry.signatures import _client, push_signature, resolve_digest

    key = load_private_key(key_path)
    lines = []
    for ref in refs:
        parsed = parse_reference(ref)
        digest = resolve_digest(_client(parsed, insecure, None), parsed)
        identity = f"{parsed.name}:{parsed.tag}" if parsed.tag else parsed.name
        payload = simple_signing_payload(identity, digest)
        push_signature(str(parsed), digest, payload, sign_payload(key, payload), insecure_registries=tuple(insecure))
        lines.append(parsed.with_digest(digest))
    return lines


def cmd_sign(args: argparse.Namespace) -> int:
    for line in sign_refs([args.image], args.key, args.insecure_registry):
        print(line, flush=True)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Exit 0 when a signature verifies with the key and the provenance's subject is the image; else 1."""
    from ocibuild.attest.provenance import check_subject
    from ocibuild.attest.sign import load_public_key, verify_payload
    from ocibuild.errors import BuildError
    from ocibuild.registry.signatures import fetch_signatures

    key = load_public_key(args.key)
    signed, _ = fetch_signatures(args.image, insecure_registries=tuple(args.insecure_registry))
    if not signed.signatures:
        raise BuildError(f"{args.image}: no signature for {signed.digest}")
    problems = []
    for payload, signature in signed.signatures:
        try:
            verify_payload(key, payload, signature, signed.digest, signed.reference.name)
            break
        except BuildError as exc:
            problems.append(str(exc))
    else:
        raise BuildError(f"{args.image}@{signed.digest}: {problems[0]}")
    if not args.signature_only:
        by_digest = f"{signed.reference.name}@{signed.digest}"
        try:
            check_subject(_from_registry(by_digest, [PROVENANCE_TYPE], args.insecure_registry), [signed.digest])
        except (ValueError, UserInputError) as exc:  # a missing or foreign provenance fails the check
            raise BuildError(f"{args.image}: {exc}") from None
    print(f"{signed.reference.with_digest(signed.digest)}", flush=True)
    return 0
