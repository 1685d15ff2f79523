"""sdists are built inside the image's filesystem, as Cog's pip does after apt: a C extension whose build needs a
header and a pkg-config file that only a Debian ``system_packages`` entry (libyaml-dev) provides."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from ocibuild.cog.build import BuildOptions, build_project, plan_project
from ocibuild.errors import BuildError
from ocibuild.oci import Platform, Store
from ocibuild.run.sdistbuild import why

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello-world"
NATIVE, OTHER = ("amd64", "arm64") if os.uname().machine == "x86_64" else ("arm64", "amd64")
FOREIGN = Platform("linux", OTHER)

SETUP_PY = """\
import subprocess
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class WithPkgConfig(build_ext):
    def build_extensions(self):
        found = subprocess.run(["pkg-config", "--cflags", "--libs", "yaml-0.1"], capture_output=True, text=True)
        if found.returncode:
            raise SystemExit("pkg-config: " + found.stderr.strip())
        for ext in self.extensions:
            ext.extra_compile_args += [f for f in found.stdout.split() if f.startswith("-I")]
            ext.libraries += [f[2:] for f in found.stdout.split() if f.startswith("-l")]
        super().build_extensions()


setup(name="yamlver", version="0.1", ext_modules=[Extension("yamlver", ["yamlver.c"])],
      cmdclass={"build_ext": WithPkgConfig})
"""

YAMLVER_C = """\
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <yaml.h>

static PyObject *version(PyObject *self, PyObject *args) { return PyUnicode_FromString(yaml_get_version_string()); }
static PyMethodDef methods[] = {{"version", version, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "yamlver", NULL, -1, methods};
PyMODINIT_FUNC PyInit_yamlver(void) { return PyModule_Create(&module); }
"""


def _sdist(path: Path) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in {"setup.py": SETUP_PY, "yamlver.c": YAMLVER_C}.items():
            info = tarfile.TarInfo(f"yamlver-0.1/{name}")
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))


def _project(tmp_path: Path, system_packages: list[str]) -> Path:
    project = tmp_path / f"project-{len(system_packages)}"
    shutil.copytree(EXAMPLE, project)
    (project / "ocibuild.lock").unlink()
    (project / "dist").mkdir()
    _sdist(project / "dist" / "yamlver-0.1.tar.gz")
    (project / "requirements.txt").write_text("./dist/yamlver-0.1.tar.gz\n")
    packages = f"  system_packages: {json.dumps(system_packages)}\n" if system_packages else ""
    (project / "cog.yaml").write_text(
        f'build:\n  python_version: "3.11"\n  python_requirements: requirements.txt\n{packages}'
        'predict: "predict.py:Predictor"\n'
    )
    return project


@pytest.mark.integration
def test_an_sdist_finds_the_headers_and_pkg_config_files_of_system_packages(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    result = build_project(_project(tmp_path, ["libyaml-dev"]) / "cog.yaml", BuildOptions(store=store))
    names = json.loads(result.target.config_bytes)["history"]
    shipped: dict[str, bytes] = {}
    for layer in result.target.layers:
        with tarfile.open(layer.path) as tar:
            for member in tar.getmembers():
                if member.isfile() and "yamlver" in member.name and member.name.endswith(".so"):
                    shipped[member.name] = tar.extractfile(member).read()  # type: ignore[union-attr]
                if member.name in ("usr/bin/gcc", "usr/bin/pkg-config", "usr/bin/pkgconf"):
                    pytest.fail(f"the build toolbox shipped: {member.name}")
    (name, extension), *_ = shipped.items()
    assert name.startswith("usr/local/lib/python3.11/dist-packages/yamlver.cpython-311-x86_64-linux-gnu")
    assert b"libyaml-0.so.2" in extension  # linked against the system package's library
    assert not [h for h in names if "toolbox" in json.dumps(h)], "the toolbox is a layer of the image"
    lock = json.loads((result.loaded.project_dir / "ocibuild.lock").read_text())
    assert "gcc" in lock["toolbox"]["linux/amd64"]["requested"]
    (yamlver,) = [d for d in lock["python"]["linux/amd64"]["distributions"] if d["name"] == "yamlver"]
    assert yamlver["kind"] == "sdist"


@pytest.mark.integration
def test_without_the_system_package_the_sdist_fails_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(BuildError) as caught:
        build_project(_project(tmp_path, []) / "cog.yaml", BuildOptions(store=Store(tmp_path / "store")))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("yamlver 0.1: building its sdist in the image failed: pkg-config: Package yaml-0.1 ")


def test_a_failed_build_is_summed_up_by_the_backends_cause_and_uvs_reason() -> None:
    log = (
        "Building wheel from source distribution...\nrunning build_ext\n"
        "pkg-config: Package yaml-0.1 was not found in the pkg-config search path.\n"
        "Perhaps you should add the directory containing `yaml-0.1.pc'\n"
        "error: Failed to build `x.tar.gz`\n  cause: The build backend returned an error\n"
    )
    assert why(log) == (
        "pkg-config: Package yaml-0.1 was not found in the pkg-config search path. "
        "(Failed to build `x.tar.gz`: The build backend returned an error)"
    )


@pytest.mark.integration
def test_a_platform_this_machine_cannot_run_builds_sdists_on_the_host_without_a_toolbox(tmp_path: Path) -> None:
    project = _project(tmp_path, [])
    options = BuildOptions(store=Store(tmp_path / "store"), platforms=(Platform("linux", NATIVE), FOREIGN))
    native, foreign = plan_project(project / "cog.yaml", options).platforms
    assert native.toolbox is not None and "gcc" in native.toolbox.created_by
    assert foreign.toolbox is None
