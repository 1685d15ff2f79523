"""Refusals: a bad InRelease signature, a Packages file or .deb that does not match its signed/locked hash."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from ocibuild.errors import BuildError
from ocibuild.oci.store import Store
from ocibuild.sources import debian
from ocibuild.sources.debian.fetch import fetch_deb
from ocibuild.sources.debian.index import DEFAULT_KEYRING, Archive, fetch_release, load_packages, verify_inrelease

pytestmark = pytest.mark.integration
MIRROR = "http://deb.debian.org/debian"


@pytest.fixture(scope="module")
def inrelease() -> bytes:
    return requests.get(f"{MIRROR}/dists/bookworm/InRelease", timeout=60).content


@pytest.fixture
def server() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A local mirror serving ``files`` (path -> bytes)."""
    files: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", files
    httpd.shutdown()


def test_a_genuine_inrelease_verifies(inrelease: bytes) -> None:
    assert b"Codename: bookworm" in verify_inrelease(inrelease, DEFAULT_KEYRING, "InRelease")


def test_a_flipped_byte_in_inrelease_is_a_bad_signature(inrelease: bytes) -> None:
    at = inrelease.index(b"Codename: bookworm") + len(b"Codename: ")
    tampered = inrelease[:at] + b"B" + inrelease[at + 1 :]
    with pytest.raises(BuildError, match=r"bad signature .*refusing the archive index"):
        verify_inrelease(tampered, DEFAULT_KEYRING, "InRelease")


def test_an_unsigned_release_is_refused(inrelease: bytes) -> None:
    body = inrelease.split(b"\n\n", 1)[1].split(b"-----BEGIN PGP SIGNATURE-----")[0]
    with pytest.raises(BuildError, match="no valid signature"):
        verify_inrelease(body, DEFAULT_KEYRING, "InRelease")


def test_a_packages_file_that_does_not_match_the_signed_hash_is_refused(
    inrelease: bytes, server: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    url, files = server
    files["/dists/bookworm/InRelease"] = inrelease
    store = Store(tmp_path / "store")
    with requests.Session() as session:
        release = fetch_release(session, Archive(url, "bookworm"), store)
        want = release.sha256["main/binary-amd64/Packages.xz"][0]
        files[f"/dists/bookworm/main/binary-amd64/by-hash/SHA256/{want}"] = b"\xfd7zXZ\x00tampered"
        with pytest.raises(BuildError, match=r"Packages\.xz: sha256 does not match the signed InRelease"):
            load_packages(session, release, "main", "amd64", store)


def test_a_deb_that_does_not_match_the_lock_is_refused(server: tuple[str, dict[str, bytes]], tmp_path: Path) -> None:
    url, files = server
    lock = debian.load_lock(debian.load_base_definition("3.11"), "linux/amd64")
    pkg = min(lock.packages, key=lambda p: p.size)
    genuine = requests.get(pkg.url, timeout=60).content
    files["/" + pkg.filename] = genuine[:-1] + bytes([genuine[-1] ^ 1])
    local = dataclasses.replace(pkg, url=f"{url}/{pkg.filename}")
    with pytest.raises(BuildError, match=r"does not match the lock .*refusing the package"):
        fetch_deb(Store(tmp_path / "store"), local)
    files["/" + pkg.filename] = genuine
    assert fetch_deb(Store(tmp_path / "store"), local).read_bytes() == genuine
