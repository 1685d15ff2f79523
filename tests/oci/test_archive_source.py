"""A dual tarball as an image source: its OCI layout unpacked once into the store, and nothing else of it."""

from __future__ import annotations

import io
import os
import subprocess
import sysconfig
import tarfile
from pathlib import Path

import pytest

from ocibuild.errors import UserInputError
from ocibuild.image_source import archive_layout, load_layout_or_archive
from ocibuild.oci import Entry, ImageConfig, Store, build_image, write_archive, write_layer
from tests.helpers import REPO


def _tarball(tmp_path: Path, store: Store) -> tuple[Path, str]:
    layer = write_layer([Entry.file("hello.txt", b"hello\n")], store)
    image = build_image([layer], ImageConfig(cmd=["/hello.txt"]))
    return write_archive(tmp_path / "image.tar", image, ["test/hello:latest"]), image.digest


def test_a_tarball_is_unpacked_once_and_read_back(tmp_path: Path):
    store = Store(tmp_path / "store")
    tarball, digest = _tarball(tmp_path, store)
    assert load_layout_or_archive(str(tarball), store).digest == digest
    assert archive_layout(tarball, store) == archive_layout(tarball, store)
    (unpacked,) = (store.root / "archives").iterdir()
    names = sorted(p.relative_to(unpacked).as_posix() for p in unpacked.rglob("*") if p.is_file())
    assert names[-2:] == ["index.json", "oci-layout"] and all(n.startswith("blobs/sha256/") for n in names[:-2])
    assert not (unpacked / "manifest.json").exists(), "the docker-archive half is not the layout's"


def test_no_tarfile_extraction_filter_is_needed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Python before 3.11.4, Debian 12's 3.11.2 included, has no ``tarfile.data_filter``."""
    store = Store(tmp_path / "store")
    tarball, digest = _tarball(tmp_path, store)
    monkeypatch.delattr(tarfile, "data_filter")
    monkeypatch.delattr(tarfile.TarFile, "extraction_filter")
    assert load_layout_or_archive(str(tarball), store).digest == digest


def _add(tar: tarfile.TarFile, name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, len(data)
    tar.addfile(info, io.BytesIO(data) if data else None)


def test_links_escapes_and_other_files_of_a_hostile_tarball_are_passed_over(tmp_path: Path):
    store = Store(tmp_path / "store")
    tarball, digest = _tarball(tmp_path, store)
    hostile = tmp_path / "hostile.tar"
    link_blob, hard_blob = "blobs/sha256/" + "0" * 64, "blobs/sha256/" + "1" * 64
    with tarfile.open(tarball) as good, tarfile.open(hostile, "w") as tar:
        for member in good:
            tar.addfile(member, good.extractfile(member))
        _add(tar, link_blob, kind=tarfile.SYMTYPE, link="/etc/passwd")
        _add(tar, hard_blob, kind=tarfile.LNKTYPE, link="oci-layout")
        _add(tar, "../escaped.txt", b"out")
        _add(tar, "blobs/../../escaped.txt", b"out")
        _add(tar, "/tmp/ocibuild-absolute.txt", b"out")
    layout = archive_layout(hostile, store)
    assert load_layout_or_archive(str(hostile), store).digest == digest
    assert not (layout / link_blob).exists() and not (layout / hard_blob).exists()
    assert not list(tmp_path.rglob("escaped.txt")) and not Path("/tmp/ocibuild-absolute.txt").exists()
    assert sorted(p.name for p in layout.iterdir()) == ["blobs", "index.json", "oci-layout"]


def test_a_tarball_without_a_layout_is_one_line(tmp_path: Path):
    plain = tmp_path / "plain.tar"
    with tarfile.open(plain, "w") as tar:
        _add(tar, "hello.txt", b"hello")
    with pytest.raises(UserInputError, match=r"plain\.tar: the tarball holds no OCI layout"):
        archive_layout(plain, Store(tmp_path / "store"))


SYSTEM_PYTHON = Path("/usr/bin/python3.11")


@pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason="no Debian python3.11 here")
def test_debians_python_3_11_2_reads_a_tarball(tmp_path: Path):
    """Debian 12's python3.11 (3.11.2, no extraction filters) with this environment's packages unpacks a tarball."""
    store = Store(tmp_path / "store")
    tarball, digest = _tarball(tmp_path, store)
    check = (
        "import sys, tarfile\nfrom ocibuild.image_source import load_layout_or_archive\n"
        "from ocibuild.oci import Store\n"
        "print(sys.version.split()[0], hasattr(tarfile, 'data_filter'))\n"
        "print(load_layout_or_archive(sys.argv[1], Store(sys.argv[2])).digest)\n"
    )
    site = sysconfig.get_paths()["purelib"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), site])}
    done = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", check, str(tarball), str(tmp_path / "other-store")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    version, digest_line = done.stdout.splitlines()
    assert version.startswith("3.11.") and digest_line == digest
