"""Debian archive indexes: a gpgv-verified InRelease, and Packages files checked against its signed hashes.

Parsed Packages indexes are cached under ``store.root/"debian"/"index"`` keyed by the sha256 of the compressed
file, so re-locking against an unchanged archive parses nothing. Verified InRelease files are kept as store blobs
so a lock can name them by digest.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
import shutil
import subprocess
import tempfile
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from debian import deb822

if TYPE_CHECKING:
    import requests

from ocibuild.errors import BuildError
from ocibuild.oci.store import Store

DEFAULT_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
INDEX_FORMAT = "1"
_FIELDS = (
    "Package",
    "Version",
    "Architecture",
    "Pre-Depends",
    "Depends",
    "Provides",
    "Essential",
    "Multi-Arch",
    "Priority",
    "Filename",
    "SHA256",
    "Size",
)


@dataclass(frozen=True)
class Archive:
    """One suite of one mirror, e.g. ``http://deb.debian.org/debian`` + ``bookworm-updates``."""

    url: str
    suite: str
    components: tuple[str, ...] = ("main",)

    @property
    def inrelease_url(self) -> str:
        return f"{self.url.rstrip('/')}/dists/{self.suite}/InRelease"


@dataclass(frozen=True)
class Release:
    """The verified content of an InRelease file."""

    archive: Archive
    digest: str
    date: str
    by_hash: bool
    sha256: dict[str, tuple[str, int]]


@dataclass(frozen=True)
class PackageRecord:
    """The fields of a Packages stanza that resolving and locking need."""

    name: str
    version: str
    architecture: str
    pre_depends: str
    depends: str
    provides: str
    essential: bool
    multi_arch: str
    priority: str
    filename: str
    sha256: str
    size: int
    base_url: str


def http_get(session: requests.Session, url: str) -> bytes:
    """GET ``url``; a network failure or non-200 answer is a one-line BuildError."""
    import requests

    try:
        response = session.get(url, timeout=60)
    except requests.RequestException as exc:
        raise BuildError(f"cannot fetch {url}: {exc.__class__.__name__}") from exc
    if response.status_code != 200:
        raise BuildError(f"cannot fetch {url}: HTTP {response.status_code}")
    return response.content


def verify_inrelease(signed: bytes, keyring: Path, source: str) -> bytes:
    """The signed text of a clearsigned InRelease, checked by gpgv against ``keyring``; refuses anything else."""
    if not keyring.is_file():
        raise BuildError(f"Debian archive keyring not found: {keyring} (install debian-archive-keyring)")
    gpgv = shutil.which("gpgv")
    if gpgv is None:
        raise BuildError("gpgv not found: it is needed to verify Debian archive signatures (install gpgv)")
    with tempfile.TemporaryDirectory(prefix="ocibuild-gpgv-") as tmp:
        src, out = Path(tmp, "InRelease"), Path(tmp, "Release")
        src.write_bytes(signed)
        proc = subprocess.run(
            [gpgv, "--status-fd", "1", "--keyring", str(keyring), "--output", str(out), str(src)],
            capture_output=True,
            env={**os.environ, "LC_ALL": "C"},
            check=False,
        )
        status = proc.stdout.decode(errors="replace")
        if proc.returncode != 0 or "[GNUPG:] VALIDSIG" not in status or not out.is_file():
            reason = "bad signature" if "BADSIG" in status else "no valid signature"
            raise BuildError(f"{source}: {reason} from a key in {keyring}; refusing the archive index")
        return out.read_bytes()


def fetch_release(
    session: requests.Session, archive: Archive, store: Store, keyring: Path = DEFAULT_KEYRING, pinned: str = ""
) -> Release:
    """The verified Release of ``archive``: the ``pinned`` InRelease digest from the store when kept, else fetched."""
    kept = pinned and store.has_blob(pinned)
    signed = store.read_bytes(pinned) if kept else http_get(session, archive.inrelease_url)
    text = verify_inrelease(signed, keyring, archive.inrelease_url)
    release = deb822.Release(text)
    if archive.suite not in (release.get("Suite"), release.get("Codename")):
        codename = release.get("Codename")
        raise BuildError(f"{archive.inrelease_url}: signed for suite {codename!r}, not {archive.suite!r}")
    digest = store.put_bytes(signed)
    files = {item["name"]: (item["sha256"], int(item["size"])) for item in release.get("SHA256", [])}
    return Release(archive, digest, release.get("Date", ""), release.get("Acquire-By-Hash") == "yes", files)


def load_packages(
    session: requests.Session, release: Release, component: str, arch: str, store: Store
) -> list[PackageRecord]:
    """The stanzas of ``component/binary-arch/Packages.xz``, hash-checked against the signed Release."""
    name = f"{component}/binary-{arch}/Packages.xz"
    if name not in release.sha256:
        raise BuildError(f"{release.archive.inrelease_url}: no {name} in the signed index")
    want, size = release.sha256[name]
    cache = store.root / "debian" / "index" / f"{want}-{INDEX_FORMAT}.json"
    base_url = release.archive.url.rstrip("/")
    try:
        return [PackageRecord(*row, base_url) for row in json.loads(cache.read_text())]
    except (FileNotFoundError, ValueError, TypeError):
        pass
    dists = f"{base_url}/dists/{release.archive.suite}"
    url = f"{dists}/{component}/binary-{arch}/by-hash/SHA256/{want}" if release.by_hash else f"{dists}/{name}"
    data = http_get(session, url)
    if hashlib.sha256(data).hexdigest() != want or len(data) != size:
        raise BuildError(f"{dists}/{name}: sha256 does not match the signed InRelease; refusing the index")
    records = parse_packages(lzma.decompress(data), base_url)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with store.temp_path(".json") as temp:
        temp.write_text(json.dumps([astuple(r)[:-1] for r in records], separators=(",", ":")))
        os.replace(temp, cache)
    return records


def parse_packages(text: bytes, base_url: str) -> list[PackageRecord]:
    """PackageRecords from the text of a Packages file (python-debian's deb822 parser)."""
    records = []
    for para in deb822.Packages.iter_paragraphs(io.BytesIO(text), use_apt_pkg=False, fields=list(_FIELDS)):
        records.append(
            PackageRecord(
                name=para["Package"],
                version=para["Version"],
                architecture=para["Architecture"],
                pre_depends=para.get("Pre-Depends", ""),
                depends=para.get("Depends", ""),
                provides=para.get("Provides", ""),
                essential=para.get("Essential") == "yes",
                multi_arch=para.get("Multi-Arch", ""),
                priority=para.get("Priority", ""),
                filename=para["Filename"],
                sha256=para["SHA256"],
                size=int(para["Size"]),
                base_url=base_url,
            )
        )
    return records
