"""What a push tells CI: one ``REGISTRY/REPO:TAG@sha256:...`` line per reference, and the files behind
``--image-refs`` and ``--digest-file``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def format_refs(pushed: list[str]) -> str:
    """The stdout text for a push: one pushed reference per line."""
    return "".join(f"{ref}\n" for ref in pushed)


def _write_atomic(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(temp, 0o644)
    os.replace(temp, path)


def write_image_refs(path: Path, pushed: list[str]) -> None:
    """``--image-refs FILE``: the pushed references, one per line."""
    _write_atomic(path, format_refs(pushed))


def write_digest_file(path: Path, digest: str) -> None:
    """``--digest-file FILE``: the manifest digest alone, without a newline (as skopeo's ``--digestfile``)."""
    _write_atomic(path, digest)
