"""What a push tells CI: one ``REGISTRY/REPO:TAG@sha256:...`` line per reference, and the files behind
``--image-refs`` and ``--digest-file``."""

from __future__ import annotations

from pathlib import Path

from ocibuild.oci.atomic import write_atomic


def format_refs(pushed: list[str]) -> str:
    """The stdout text for a push: one pushed reference per line."""
    return "".join(f"{ref}\n" for ref in pushed)


def write_image_refs(path: Path, pushed: list[str]) -> None:
    """``--image-refs FILE``: the pushed references, one per line."""
    write_atomic(path, format_refs(pushed).encode())


def write_digest_file(path: Path, digest: str) -> None:
    """``--digest-file FILE``: the manifest digest alone, without a newline (as skopeo's ``--digestfile``)."""
    write_atomic(path, digest.encode())
