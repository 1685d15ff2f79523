"""Resolving real requirements from PyPI for the image's target, and building their layers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from ocibuild.errors import BuildError, UserInputError
from ocibuild.oci.store import Store
from ocibuild.sources.python import (
    PythonTarget,
    check_lock,
    group_distributions,
    lock_python,
    pip_freeze,
    python_layers,
    read_requirements,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("pypi")]

BOOKWORM = PythonTarget()
TRIXIE = PythonTarget.for_python("3.13", "2.41")
ARM = PythonTarget.for_python("3.11", "2.36", "linux/arm64")
TORCH_WHEELS = Path("/opt/wheels")


def requirements(tmp_path: Path, text: str):
    (tmp_path / "requirements.txt").write_text(text)
    return read_requirements(tmp_path, "requirements.txt")


def run_python(interpreter: str, site: Path, code: str) -> str:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(site), "PYTHONNOUSERSITE": "1"}
    result = subprocess.run([interpreter, "-s", "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize(("target", "host_python"), [(BOOKWORM, "/usr/bin/python3.11"), (TRIXIE, "python3.13")])
def test_numpy_and_requests_lock_and_install(
    tmp_path: Path, store: Store, unpack, target: PythonTarget, host_python: str
) -> None:
    reqs = requirements(tmp_path, "numpy\nrequests\n")
    section = lock_python(reqs, target)
    check_lock(section, reqs, target)
    names = {d["name"] for d in section["distributions"]}
    assert {"numpy", "requests", "urllib3", "idna", "certifi", "charset-normalizer"} <= names
    numpy = next(d for d in section["distributions"] if d["name"] == "numpy")
    tag = "cp" + target.python_version.replace(".", "")
    assert f"-{tag}-{tag}-manylinux" in numpy["filename"] and numpy["url"].startswith("https://")
    assert len(numpy["sha256"]) == 64 and numpy["size"] > 1_000_000
    assert "numpy==" in pip_freeze(section)

    layers = python_layers(section, target, store, 0)
    site = unpack(layers, tmp_path / "rootfs") / target.site_packages.lstrip("/")
    assert list((site / "numpy").glob(f"_core/_multiarray_umath.cpython-{tag[2:]}-x86_64-linux-gnu.so"))
    assert not list(site.rglob("*.pyc"))
    interpreter = shutil.which(host_python)
    if interpreter and subprocess.run([interpreter, "-c", ""], capture_output=True).returncode == 0:
        out = run_python(interpreter, site, "import numpy, requests; print(numpy.__version__, requests.__version__)")
        assert (
            out
            == f"{numpy['version']} {next(d['version'] for d in section['distributions'] if d['name'] == 'requests')}"
        )


@pytest.mark.skipif(not list(TORCH_WHEELS.glob("torch-*+cpu-cp311-*.whl")), reason="no local torch CPU wheel")
def test_torch_cpu_from_a_local_wheel_folder(tmp_path: Path, store: Store, unpack, names_in, scratch: Path) -> None:
    reqs = requirements(tmp_path, "torch==2.13.0+cpu\n")
    section = lock_python(reqs, BOOKWORM, find_links=[str(TORCH_WHEELS)])
    check_lock(section, reqs, BOOKWORM, find_links=[str(TORCH_WHEELS)])
    torch = next(d for d in section["distributions"] if d["name"] == "torch")
    assert torch["url"].startswith("file:///opt/wheels/") and torch["size"] > 100_000_000
    assert not any(d["name"].startswith("nvidia-") for d in section["distributions"])

    layers = python_layers(section, BOOKWORM, store, 0)
    assert layers[0][0] == "python: torch==2.13.0+cpu"
    torch_layer_names = names_in(layers[0][1])
    assert all(not n.startswith(f"{BOOKWORM.site_packages.lstrip('/')}/sympy/") for n in torch_layer_names)

    site = unpack(layers, scratch) / BOOKWORM.site_packages.lstrip("/")
    assert (scratch / "usr/local/bin/torchrun").read_text().startswith("#!/usr/bin/python3.11\n")
    if Path("/usr/bin/python3.11").exists():
        assert (
            run_python("/usr/bin/python3.11", site, "import torch; print((torch.ones(2) @ torch.ones(2)).item())")
            == "2.0"
        )


def test_torch_gpu_locks_cuda_wheels_without_downloading_them(tmp_path: Path, monkeypatch) -> None:
    uv_cache = tmp_path / "uv-cache"
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache))
    section = lock_python(requirements(tmp_path, "torch==2.9.1\n"), BOOKWORM)
    dists = {d["name"]: d for d in section["distributions"]}
    assert dists["torch"]["version"] == "2.9.1"
    nvidia = [name for name in dists if name.startswith("nvidia-")]
    assert {"nvidia-cudnn-cu12", "nvidia-cublas-cu12", "nvidia-nccl-cu12"} <= set(nvidia)
    assert "triton" in dists
    for name in nvidia:
        assert "manylinux" in dists[name]["filename"] and "x86_64" in dists[name]["filename"]
    cached = sum(p.stat().st_size for p in uv_cache.rglob("*") if p.is_file())
    assert cached < 50 * 1024 * 1024, f"locking downloaded {cached} bytes"
    large = [g.name for g in group_distributions(section["distributions"])]
    assert "python: torch==2.9.1" in large and any("nvidia-cudnn-cu12" in g for g in large)


def _pytorch_index_reachable() -> bool:
    try:
        socket.create_connection(("download.pytorch.org", 443), timeout=5).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _pytorch_index_reachable(), reason="download.pytorch.org is not reachable from here")
def test_torch_cuda_suffix_resolves_the_cuda_build(tmp_path: Path) -> None:
    reqs = requirements(tmp_path, "torch==2.7.1\n")
    section = lock_python(reqs, BOOKWORM, torch_index_suffix="cu128")
    torch = next(d for d in section["distributions"] if d["name"] == "torch")
    assert torch["version"] == "2.7.1+cu128" and "download.pytorch.org" in torch["url"]
    assert any(d["name"].startswith("nvidia-") for d in section["distributions"])
    with pytest.raises(UserInputError, match="out of date"):
        check_lock(section, reqs, BOOKWORM, torch_index_suffix="cu126")


def test_the_torch_suffix_only_applies_to_projects_with_torch(tmp_path: Path) -> None:
    reqs = requirements(tmp_path, "six\n")
    section = lock_python(reqs, BOOKWORM, torch_index_suffix="cu128")
    check_lock(section, reqs, BOOKWORM)  # no torch: the suffix changes nothing


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("OCIBUILD_SLOW"), reason="downloads ~3 GB of CUDA wheels; set OCIBUILD_SLOW=1")
def test_torch_gpu_layers_download_and_build(tmp_path: Path, store: Store) -> None:
    section = lock_python(requirements(tmp_path, "torch==2.9.1\n"), BOOKWORM)
    layers = python_layers(section, BOOKWORM, store, 0)
    names = [name for name, _ in layers]
    assert "python: torch==2.9.1" in names and "python: nvidia-cudnn-cu12==" in " ".join(names)


def test_a_shared_wheel_shares_its_layer_across_projects(tmp_path: Path, fresh_store: Path) -> None:
    store = Store(fresh_store)  # the layers are made here, by this ocibuild, not found from an earlier run
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for root, text in (
        (a, "numpy==2.4.6\nrequests==2.34.2\n"),
        (b, "numpy==2.4.6\nsix\n"),
        (c, "numpy==2.4.6\nrequests==2.33.0\n"),
    ):
        root.mkdir()
        (root / "requirements.txt").write_text(text)
    threshold = 5 * 1024 * 1024  # numpy (~17 MB) gets a layer of its own
    layers = {
        root.name: dict(
            python_layers(
                lock_python(read_requirements(root, "requirements.txt"), BOOKWORM), BOOKWORM, store, 0, threshold
            )
        )
        for root in (a, b, c)
    }
    numpy = {
        p: layer.digest for p, ls in layers.items() for name, layer in ls.items() if name.startswith("python: numpy")
    }
    assert len(set(numpy.values())) == 1 and len(numpy) == 3
    small = {
        p: next(layer.digest for name, layer in ls.items() if not name.startswith("python: numpy"))
        for p, ls in layers.items()
    }
    assert len(set(small.values())) == 3


def test_a_requirement_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(UserInputError) as err:
        lock_python(requirements(tmp_path, "six\nno-such-package-ocibuild-test==1.0\n"), BOOKWORM)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("requirements.txt: cannot resolve for python 3.11 linux/amd64 (glibc 2.36): ")
    assert "no-such-package-ocibuild-test was not found in the package registry" in message


def test_a_version_conflict(tmp_path: Path) -> None:
    with pytest.raises(UserInputError) as err:
        lock_python(requirements(tmp_path, "requests==2.34.2\nurllib3==1.0\n"), BOOKWORM)
    message = str(err.value)
    assert "\n" not in message
    assert "requests>=2.34.2 depends on urllib3" in message and "you require urllib3==1.0" in message


def test_a_wheel_with_no_build_for_the_target(tmp_path: Path) -> None:
    with pytest.raises(UserInputError) as err:
        lock_python(requirements(tmp_path, "pywin32==306\n"), BOOKWORM)
    message = str(err.value)
    assert "\n" not in message
    assert "pywin32==306 has no wheels with a matching platform tag" in message
    assert "win_amd64" in message


def test_a_compiled_sdist_for_another_cpu_is_one_line(tmp_path: Path, store: Store) -> None:
    section = lock_python(requirements(tmp_path, "netifaces==0.11.0\n"), ARM)
    assert section["distributions"][0]["kind"] == "sdist"
    with pytest.raises(BuildError) as err:
        python_layers(section, ARM, store, 0)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("netifaces 0.11.0 has no wheel for python 3.11 linux/arm64")
    assert "wheel" in message.split(";")[-1]


def test_a_pure_python_sdist_is_built_into_a_layer(tmp_path: Path, store: Store, unpack) -> None:
    section = lock_python(requirements(tmp_path, "antlr4-python3-runtime==4.9.3\n"), TRIXIE)
    assert section["distributions"][0]["kind"] == "sdist"
    tree = unpack(python_layers(section, TRIXIE, store, 0), tmp_path / "rootfs")
    assert (tree / "usr/local/lib/python3.13/dist-packages/antlr4/__init__.py").exists()


def test_hashes_in_requirements_are_checked(tmp_path: Path) -> None:
    good = "2a0d60c172f83ac6ab31e4554906c0f3b3588d37b5cb939b1c061f4907e278e0"
    section = lock_python(requirements(tmp_path, f"requests==2.34.2 --hash=sha256:{good}\n"), BOOKWORM)
    assert next(d for d in section["distributions"] if d["name"] == "requests")["sha256"] == good
    with pytest.raises(UserInputError) as err:
        lock_python(requirements(tmp_path, f"six\nrequests==2.34.2 --hash=sha256:{'0' * 64}\n"), BOOKWORM)
    assert str(err.value).startswith("requirements.txt:2: requests-2.34.2-py3-none-any.whl (sha256 ")
    assert str(err.value).endswith("matches none of the --hash values")
