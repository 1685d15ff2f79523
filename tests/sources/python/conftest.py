"""Fixtures for the Python-dependency tests: a shared store, targets, and helpers to make and unpack things."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import socket
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ocibuild.oci.compression import Compression, open_decompressor
from ocibuild.oci.layer import LayerBlob
from ocibuild.oci.store import Store


@pytest.fixture(scope="session")
def store(shared_cache: Path) -> Store:
    """One store for the session (and across runs): wheels and layers are reused."""
    return Store(shared_cache)


@pytest.fixture(scope="session")
def pypi() -> None:
    """Skip when PyPI cannot be reached."""
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
    except OSError as exc:
        pytest.skip(f"pypi.org is not reachable: {exc}")


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel_file(
    directory: Path,
    name: str,
    version: str,
    files: dict[str, bytes],
    tag: str = "py3-none-any",
    entry_points: str = "",
    requires: tuple[str, ...] = (),
) -> Path:
    """A minimal valid wheel with ``files`` (paths inside the wheel; ``.data/...`` allowed) and metadata."""
    dist_info = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    members = dict(files)
    members[f"{dist_info}/METADATA"] = metadata.encode()
    members[f"{dist_info}/WHEEL"] = f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n".encode()
    if entry_points:
        members[f"{dist_info}/entry_points.txt"] = entry_points.encode()
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in members.items())
    members[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    path = directory / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in members.items():
            info = zipfile.ZipInfo(member, (2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if member.endswith(".sh") else 0o644) << 16
            zf.writestr(info, data)
    return path


@pytest.fixture
def make_wheel() -> Callable[..., Path]:
    return build_wheel_file


def unpack_layers(layers: list[tuple[str, LayerBlob]], dest: Path) -> Path:
    """Extract the layers in order into ``dest`` (no whiteouts are expected here)."""
    for _, layer in layers:
        with (
            open(layer.path, "rb") as blob,
            tarfile.open(fileobj=open_decompressor(Compression.GZIP, blob), mode="r|") as tar,
        ):
            tar.extractall(dest, filter="tar")
    return dest


@pytest.fixture
def unpack() -> Callable[[list[tuple[str, LayerBlob]], Path], Path]:
    return unpack_layers


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """A temporary directory in memory (/dev/shm) when there is one: unpacking torch to disk is slow here."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="ocibuild-test-", dir=shm))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def layer_names(layer: LayerBlob) -> list[str]:
    with tarfile.open(layer.path, "r:gz") as tar:
        return tar.getnames()


@pytest.fixture
def names_in() -> Callable[[LayerBlob], list[str]]:
    return layer_names
