"""python-build-standalone interpreters (for Pythons Debian lacks) through ``uv python install``.

uv checks each download against the sha256 in its bundled metadata; ``UV_PYTHON_INSTALL_MIRROR`` (passed through)
points it at a mirror. The interpreter goes to ``/usr/local`` with ``/usr/bin/python3`` and ``python`` links.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

from ocibuild.errors import BuildError, UserInputError
from ocibuild.oci.entries import Entry, entries_from_tree
from ocibuild.oci.layer import LayerRecipe
from ocibuild.oci.store import Store
from ocibuild.sources.python.uv import uv_binary

DEBIAN_PYTHONS = ("3.11", "3.13", "3.14")
RECIPE = "pbs-interpreter/1"
_UV_ARCH = {"amd64": "x86_64", "arm64": "aarch64"}


def _unavailable(version: str, why: str) -> BuildError:
    return BuildError(
        f"Python {version} is not available: {why}; "
        f"Python versions available without a download: {', '.join(DEBIAN_PYTHONS)}"
    )


def pin_interpreter(version: str, arch: str) -> dict[str, str]:
    """The CPython build for linux/``arch`` that uv knows (uv's metadata; no network): the newest ``X.Y.*`` for a
    ``version`` ``X.Y``, exactly ``X.Y.Z`` for a ``version`` with a patch."""
    minor = ".".join(version.split(".")[:2])
    proc = subprocess.run(
        [
            uv_binary(),
            "python",
            "list",
            "--only-downloads",
            "--all-versions",
            "--all-arches",
            "--output-format",
            "json",
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise _unavailable(version, f"uv python list failed: {proc.stderr.strip()[:200]}")
    builds = [
        b
        for b in json.loads(proc.stdout)
        if b["implementation"] == "cpython"
        and b["os"] == "linux"
        and b["libc"] == "gnu"
        and b["variant"] == "default"
        and b["arch"] == _UV_ARCH[arch]
        and ".".join(b["version"].split(".")[:2]) == minor
        and b["version_parts"]["patch"] is not None
    ]
    if version != minor:
        patches = sorted({b["version"] for b in builds}, key=lambda v: [int(x) for x in v.split(".")])
        builds = [b for b in builds if b["version"] == version]
        if not builds and patches:
            raise UserInputError(
                f"cog.yaml: python_version {version}: no python-build-standalone build of it "
                f"(known: {', '.join(patches[-8:])})"
            )
    if not builds:
        raise _unavailable(version, f"uv knows no python-build-standalone build for linux/{arch}")
    best = max(builds, key=lambda b: tuple(b["version_parts"][k] for k in ("major", "minor", "patch")))
    return {"key": best["key"], "url": best["url"], "version": best["version"]}


def _install(pin: dict[str, str], dest: Path) -> Path:
    """``uv python install`` into ``dest``; returns the installation directory."""
    proc = subprocess.run(
        [uv_binary(), "python", "install", pin["key"], "--install-dir", str(dest), "--no-bin", "--no-registry"],
        capture_output=True,
        text=True,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "automatic"},
    )
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        why = lines[-1] if lines else f"uv exited with {proc.returncode}"
        raise _unavailable(".".join(pin["version"].split(".")[:2]), f"downloading {pin['key']} failed ({why})")
    installs = [p for p in dest.iterdir() if p.is_dir() and p.name.startswith("cpython-")]
    if len(installs) != 1:
        raise BuildError(f"uv python install left an unexpected tree in {dest}")
    return installs[0]


def interpreter_recipe(pin: dict[str, str], store: Store, source_date_epoch: int) -> LayerRecipe:
    """How to make the layer of the interpreter ``pin`` under ``/usr/local`` (keyed by the pinned build)."""
    minor = ".".join(pin["version"].split(".")[:2])

    def entries(stack: contextlib.ExitStack) -> list[Entry]:
        store.require_online(f"the Python interpreter {pin['key']}")
        tmp = stack.enter_context(tempfile.TemporaryDirectory(dir=store.root / "tmp", prefix="pbs-"))
        installed = _install(pin, Path(tmp))
        items = list(entries_from_tree(installed, "usr/local", preserve_modes=True))
        items.append(Entry.symlink("usr/bin/python3", f"../local/bin/python{minor}"))
        items.append(Entry.symlink("usr/bin/python", "python3"))
        return items

    return LayerRecipe(f"{RECIPE}|{pin['key']}|{pin['url']}", entries, source_date_epoch)
