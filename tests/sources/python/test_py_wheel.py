"""Installing a wheel into an image tree, as a build does (its layer, unpacked): paths, scripts, shebangs, RECORD,
no byte-code."""

from __future__ import annotations

import csv
import hashlib
import io
import os
from pathlib import Path

import pytest

from ocibuild.errors import BuildError
from ocibuild.oci.store import Store
from ocibuild.sources.python import PythonTarget, python_layers
from tests.sources.python.conftest import unpack_layers

SITE = "usr/local/lib/python3.11/dist-packages"


def install_wheel(wheel: Path, root: Path, target: PythonTarget) -> Path:
    """``wheel`` installed into ``root`` as a build installs it: the layer of a lock naming it, unpacked."""
    data = wheel.read_bytes()
    name, version = wheel.name.split("-")[:2]
    dist = {"name": name, "version": version, "kind": "wheel", "filename": wheel.name, "path": wheel.name}
    dist |= {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    store = Store(root.with_name(root.name + "-store"))
    return unpack_layers(python_layers({"distributions": [dist]}, target, store, 0, project_dir=wheel.parent), root)


def test_install_places_files_and_rewrites_scripts(tmp_path: Path, make_wheel) -> None:
    wheel = make_wheel(
        tmp_path,
        "demo",
        "1.0",
        {
            "demo/__init__.py": b"def main():\n    return 0\n",
            "demo/run.sh": b"#!/bin/sh\n",
            "demo-1.0.data/scripts/demo-tool": b"#!python\nprint('hi')\n",
            "demo-1.0.data/data/share/demo/readme.txt": b"data\n",
            "demo-1.0.data/headers/demo.h": b"int x;\n",
        },
        entry_points="[console_scripts]\ndemo = demo:main\n[demo.plugins]\nx = y\n",
    )
    root = tmp_path / "root"
    install_wheel(wheel, root, PythonTarget())
    site = root / SITE
    assert (site / "demo" / "__init__.py").read_bytes() == b"def main():\n    return 0\n"
    assert os.access(site / "demo" / "run.sh", os.X_OK)
    assert (root / "usr/local/bin/demo-tool").read_bytes() == b"#!/usr/bin/python3.11\nprint('hi')\n"
    script = (root / "usr/local/bin/demo").read_text()
    assert script.startswith("#!/usr/bin/python3.11\n") and "from demo import main" in script
    assert os.access(root / "usr/local/bin/demo", os.X_OK)
    assert (root / "usr/local/share/demo/readme.txt").read_bytes() == b"data\n"
    assert (root / "usr/local/include/python3.11/demo/demo.h").exists()
    assert (site / "demo-1.0.dist-info" / "INSTALLER").read_text() == "ocibuild\n"
    assert not list(root.rglob("*.pyc"))
    rows = list(csv.reader(io.StringIO((site / "demo-1.0.dist-info" / "RECORD").read_text())))
    paths = [row[0] for row in rows]
    assert "../../../bin/demo" in paths and "../../../bin/demo-tool" in paths
    assert "../../../share/demo/readme.txt" in paths
    assert paths[-1] == "demo-1.0.dist-info/RECORD"
    assert paths[:-1] == sorted(paths[:-1])


def test_install_is_deterministic(tmp_path: Path, make_wheel) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0", {"demo/__init__.py": b""}, entry_points="[console_scripts]\nd=demo:x")
    install_wheel(wheel, tmp_path / "a", PythonTarget())
    install_wheel(wheel, tmp_path / "b", PythonTarget())
    record = f"{SITE}/demo-1.0.dist-info/RECORD"
    assert (tmp_path / "a" / record).read_bytes() == (tmp_path / "b" / record).read_bytes()


def test_paths_escaping_the_tree_are_refused(tmp_path: Path, make_wheel) -> None:
    wheel = make_wheel(tmp_path, "evil", "1.0", {"evil-1.0.data/data/../../../../etc/passwd": b"x"})
    with pytest.raises(BuildError, match="escapes the installation directory"):
        install_wheel(wheel, tmp_path / "root", PythonTarget())


def test_a_broken_wheel_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad-1.0-py3-none-any.whl"
    bad.write_bytes(b"not a zip")
    with pytest.raises(BuildError, match=r"^bad-1.0-py3-none-any.whl: not a valid wheel"):
        install_wheel(bad, tmp_path / "root", PythonTarget())
