"""The layer compression a build picks when none is given: from the cold-start measurements (README)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ocibuild.cli import _compression, make_parser
from ocibuild.cog.build import default_compression
from ocibuild.oci import Compression, ImageFormat


def test_gpu_images_get_zstd_chunked_and_every_other_image_gzip() -> None:
    assert default_compression(True, ImageFormat.OCI) is Compression.ZSTD_CHUNKED
    assert default_compression(False, ImageFormat.OCI) is Compression.GZIP
    assert default_compression(True, ImageFormat.DOCKER) is Compression.GZIP  # schema2 has no zstd media type


def _build_args(*argv: str) -> argparse.Namespace:
    return make_parser().parse_args(["build", ".", *argv])


def test_the_cli_leaves_the_choice_to_the_build_unless_docker_must_read_the_output(tmp_path: Path) -> None:
    assert _compression(_build_args()) is None  # chosen by the image once cog.yaml is read
    assert _compression(_build_args("--compression", "zstd")) is Compression.ZSTD
    assert _compression(_build_args("--tarball", str(tmp_path / "image.tar"))) is Compression.GZIP  # docker load
    assert _compression(_build_args("--format", "docker")) is Compression.GZIP
