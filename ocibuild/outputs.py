"""Where a built image goes: an OCI layout directory and, optionally, a dual tarball."""

from __future__ import annotations

from pathlib import Path

from ocibuild.errors import UserInputError
from ocibuild.oci.archive import write_archive
from ocibuild.oci.image import Image, Index
from ocibuild.oci.layout import write_layout
from ocibuild.progress import Reporter
from ocibuild.registry.reference import refuse_credentials

DEFAULT_REF = "latest"


def layout_ref_names(tags: list[str]) -> list[str]:
    """ref.name annotations for the layout: the tag part of each ``-t`` reference, else ``latest``."""
    names = [tag.rsplit(":", 1)[1] if ":" in tag.rsplit("/", 1)[-1] else DEFAULT_REF for tag in tags]
    return sorted(set(names)) or [DEFAULT_REF]


def write_outputs(
    target: Image | Index,
    layout_dir: Path,
    tarball: Path | None,
    tags: list[str],
    reporter: Reporter,
    source_date_epoch: int,
) -> list[str]:
    """Write the layout (and tarball); return the result lines for stdout."""
    for tag in tags:
        refuse_credentials(tag)  # before a tag is written into the layout or the tarball
    try:
        write_layout(layout_dir, target, layout_ref_names(tags))
    except OSError as exc:
        raise UserInputError(f"--output {layout_dir}: cannot write: {exc.strerror or exc}") from None
    reporter.step(f"wrote OCI layout {layout_dir}")
    lines = [f"{layout_dir}@{target.digest}"]
    if tarball is not None:
        if not isinstance(target, Image):
            raise UserInputError("--tarball: a docker-archive holds one image; build one --platform at a time")
        repo_tags = [t if ":" in t.rsplit("/", 1)[-1] else f"{t}:latest" for t in tags] or ["ocibuild/image:latest"]
        try:
            write_archive(tarball, target, repo_tags, source_date_epoch)
        except OSError as exc:
            raise UserInputError(f"--tarball {tarball}: cannot write: {exc.strerror or exc}") from None
        reporter.step(f"wrote tarball {tarball}")
        lines.append(f"{tarball}@{target.digest}")
    return lines
