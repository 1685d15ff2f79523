"""The bundled predict runner (``layers/runner/cog``) as its own layer in the image's site-packages.

The runner is data to the builder: it is never imported here. A ``cog-<version>.dist-info`` makes it visible
to ``pip list`` and ``importlib.metadata`` like an installed ``cog`` distribution.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ocibuild.oci import Entry
from ocibuild.oci.layer import LayerRecipe
from ocibuild.resources import data_dir

RECIPE = "runner-layer/v1"


def runner_package_dir() -> Path:
    return data_dir("layers") / "runner" / "cog"


def runner_version() -> str:
    text = (runner_package_dir() / "__init__.py").read_text()
    match = re.search(r"^__version__\s*=\s*[\"']([^\"']+)[\"']", text, re.M)
    return match.group(1) if match else "0.0.0"


def _runner_files() -> list[tuple[str, Path]]:
    package = runner_package_dir()
    return sorted(
        (path.relative_to(package.parent).as_posix(), path)
        for path in package.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


def runner_entries(site_packages: str) -> list[Entry]:
    """The runner package plus its dist-info, under ``site_packages`` (an absolute image path)."""
    site = site_packages.strip("/")
    version = runner_version()
    entries = [Entry.file(f"{site}/{rel}", path.read_bytes()) for rel, path in _runner_files()]
    dist_info = f"{site}/cog-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: cog\nVersion: {version}\nSummary: ocibuild's bundled Cog runner\n"
    entries += [
        Entry.file(f"{dist_info}/METADATA", metadata.encode()),
        Entry.file(f"{dist_info}/INSTALLER", b"ocibuild\n"),
        Entry.file(f"{dist_info}/top_level.txt", b"cog\n"),
    ]
    return entries


def runner_recipe(site_packages: str, source_date_epoch: int) -> LayerRecipe:
    """How to make the runner layer; its key is the content of the runner's files, so an unchanged runner is a hit."""
    digest = hashlib.sha256()
    for rel, path in _runner_files():
        digest.update(rel.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    key = f"{RECIPE}|{site_packages}|{digest.hexdigest()}"
    return LayerRecipe(key, lambda _stack: runner_entries(site_packages), source_date_epoch)
