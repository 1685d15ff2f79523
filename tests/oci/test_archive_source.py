"""A dual tarball as an image source: unpacked once into the store, and only by a tarfile that extracts safely."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from ocibuild.errors import BuildError
from ocibuild.image_source import archive_layout, load_layout_or_archive
from ocibuild.oci import Entry, ImageConfig, Store, build_image, write_archive, write_layer


def _tarball(tmp_path: Path, store: Store) -> tuple[Path, str]:
    layer = write_layer([Entry.file("hello.txt", b"hello\n")], store)
    image = build_image([layer], ImageConfig(cmd=["/hello.txt"]))
    return write_archive(tmp_path / "image.tar", image, ["test/hello:latest"]), image.digest


def test_a_tarball_is_unpacked_once_and_read_back(tmp_path: Path):
    store = Store(tmp_path / "store")
    tarball, digest = _tarball(tmp_path, store)
    assert load_layout_or_archive(str(tarball), store).digest == digest
    assert archive_layout(tarball, store) == archive_layout(tarball, store)
    assert len(list((store.root / "archives").iterdir())) == 1


def test_without_extraction_filters_a_tarball_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Python before 3.11.4 (without a distribution's backport of PEP 706) has no tarfile.data_filter."""
    store = Store(tmp_path / "store")
    tarball, _ = _tarball(tmp_path, store)
    monkeypatch.delattr(tarfile, "data_filter")
    with pytest.raises(
        BuildError, match=r"image\.tar: this Python's tarfile cannot extract safely \(needs Python 3\.11\.4\+\)"
    ):
        archive_layout(tarball, store)
    assert not (store.root / "archives").exists() or not any((store.root / "archives").iterdir())
    assert not any(p.name.endswith(".d") for p in (store.root / "tmp").iterdir()), "no half-unpacked folder is left"
