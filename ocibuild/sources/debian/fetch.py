"""Download locked .debs into ``store.root/"debs"`` (content-addressed by sha256), verifying every byte."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ocibuild import progress
from ocibuild.errors import BuildError
from ocibuild.oci.store import Store
from ocibuild.sources.debian.lock import LockedPackage

if TYPE_CHECKING:
    import requests

CHUNK = 1 << 20
_local = threading.local()


def _session() -> requests.Session:
    import requests

    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def deb_path(store: Store, pkg: LockedPackage) -> Path:
    return store.root / "debs" / f"{pkg.sha256}.deb"


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def fetch_deb(store: Store, pkg: LockedPackage) -> Path:
    """The verified .deb of ``pkg`` in the store, downloaded when missing (temp file + rename)."""
    final = deb_path(store, pkg)
    if final.is_file() and final.stat().st_size == pkg.size and _file_sha256(final) == pkg.sha256:
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    store.require_online(f"{pkg.name} {pkg.version} ({pkg.filename}, sha256 {pkg.sha256[:12]}…)")
    import requests

    try:
        response = _session().get(pkg.url, stream=True, timeout=60)
    except requests.RequestException as exc:
        raise BuildError(f"cannot download {pkg.url}: {exc.__class__.__name__}") from exc
    with (
        response,
        store.temp_path(".deb") as temp,
        progress.active().task(pkg.filename.rsplit("/")[-1], pkg.size) as task,
    ):
        if response.status_code != 200:
            raise BuildError(f"cannot download {pkg.url}: HTTP {response.status_code} (run `ocibuild lock` to re-pin)")
        h = hashlib.sha256()
        with open(temp, "wb") as out:
            for chunk in response.iter_content(CHUNK):
                h.update(chunk)
                out.write(chunk)
                task.advance(len(chunk))
        size = temp.stat().st_size
        if h.hexdigest() != pkg.sha256 or size != pkg.size:
            raise BuildError(
                f"{pkg.url}: sha256 {h.hexdigest()[:16]}… ({size} bytes) does not match the lock "
                f"({pkg.sha256[:16]}…, {pkg.size} bytes); refusing the package"
            )
        os.replace(temp, final)
    return final
