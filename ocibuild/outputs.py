"""Where a built image goes: an OCI layout directory and, optionally, a dual tarball; and what CI reads:
one ``...@sha256:`` line per image on stdout, the files behind ``--image-refs`` and ``--digest-file``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ocibuild.errors import UserInputError
from ocibuild.oci.archive import write_archive
from ocibuild.oci.artifact import Artifact
from ocibuild.oci.atomic import write_atomic
from ocibuild.oci.image import Image, Index
from ocibuild.oci.layout import LayoutError, check_output_dir, write_layout
from ocibuild.progress import Reporter
from ocibuild.registry.reference import refuse_credentials

DEFAULT_REF = "latest"


def layout_ref_names(tags: list[str]) -> list[str]:
    """ref.name annotations for the layout: the tag part of each ``-t`` reference, else ``latest``."""
    names = [tag.rsplit(":", 1)[1] if ":" in tag.rsplit("/", 1)[-1] else DEFAULT_REF for tag in tags]
    return sorted(set(names)) or [DEFAULT_REF]


def check_layout_output(directory: Path, option: str) -> None:
    """Refuse, before any work, a directory that is neither absent, empty nor an OCI layout."""
    try:
        check_output_dir(directory)
    except LayoutError as exc:
        raise UserInputError(f"{option} {exc}") from None


def write_outputs(
    target: Image | Index,
    layout_dir: Path,
    tarball: Path | None,
    tags: list[str],
    reporter: Reporter,
    source_date_epoch: int,
    default_name: str = "ocibuild/image",
    referrers: Sequence[Artifact] = (),
) -> list[str]:
    """Write the layout (and tarball); return the result line for stdout (the tarball's when there is one).

    The tarball's images are named by ``tags``, else ``default_name``, so loading two projects keeps both.
    ``referrers`` (SBOM, provenance) are listed in the layout beside the image.
    """
    for tag in tags:
        refuse_credentials(tag)  # before a tag is written into the layout or the tarball
    try:
        write_layout(layout_dir, target, layout_ref_names(tags), referrers)
    except OSError as exc:
        raise UserInputError(f"--output {layout_dir}: cannot write: {exc.strerror or exc}") from None
    except LayoutError as exc:
        raise UserInputError(f"--output {exc}") from None
    reporter.step(f"wrote OCI layout {layout_dir}")
    lines = [f"{layout_dir}@{target.digest}"]
    if tarball is not None:
        if not isinstance(target, Image) and target.artifact_blobs:
            raise UserInputError(TARBALL_WEIGHTS)
        if not isinstance(target, Image):
            raise UserInputError("--tarball: a docker-archive holds one image; build one --platform at a time")
        names = tags or [default_name]
        repo_tags = [t if ":" in t.rsplit("/", 1)[-1] else f"{t}:latest" for t in names]
        try:
            write_archive(tarball, target, repo_tags, source_date_epoch, referrers)
        except OSError as exc:
            raise UserInputError(f"--tarball {tarball}: cannot write: {exc.strerror or exc}") from None
        reporter.step(f"wrote tarball {tarball}")
        lines = [f"{tarball}@{target.digest}"]
    return lines


TARBALL_WEIGHTS = (
    "--tarball: cog.yaml's weights: are managed weights, OCI artifacts beside the image in an index, and a "
    "docker-archive holds one image and nothing beside it; use the OCI layout (-o) or --push"
)


def format_refs(pushed: list[str]) -> str:
    """The stdout text for a push: one pushed reference per line."""
    return "".join(f"{ref}\n" for ref in pushed)


def write_image_refs(path: Path, pushed: list[str]) -> None:
    """``--image-refs FILE``: the pushed references, one per line."""
    write_atomic(path, format_refs(pushed).encode())


def write_digest_file(path: Path, digest: str) -> None:
    """``--digest-file FILE``: the manifest digest alone, without a newline (as skopeo's ``--digestfile``)."""
    write_atomic(path, digest.encode())
