"""Base images built from the real Debian archive (network on a cold cache), run in a chroot."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import requests

from ocibuild.oci.store import Store
from ocibuild.sources import debian
from ocibuild.sources.debian.fixups import ld_cache_supported
from tests.helpers import seed_store

from .conftest import CACHE, can_run_rootfs, extract_layers, run_in

pytestmark = pytest.mark.integration
needs_root = pytest.mark.skipif(not can_run_rootfs(), reason="needs root and unshare to run the rootfs")
PY_CHECK = (
    "import ssl, sqlite3, json, ctypes, ctypes.util, zoneinfo, subprocess, sys; "
    "stats = ssl.create_default_context().cert_store_stats(); assert stats['x509_ca'] > 100, stats; "
    "assert ctypes.util.find_library('m'); zoneinfo.ZoneInfo('Europe/Paris'); "
    "print(sys.version_info[:2], subprocess.run('echo shell-ok', shell=True, capture_output=True, text=True).stdout)"
)


def _layers(version: str, store: Store, platform: str = "linux/amd64", **kw):
    lock = debian.load_lock(debian.load_base_definition(version), platform)
    return lock, debian.base_layers(lock, store, 0, **kw)


@needs_root
@pytest.mark.parametrize("version", ["3.11", "3.13"])
def test_base_rootfs_runs_python_with_tls_roots_and_a_shell(version: str, deb_store: Store, tmp_path: Path) -> None:
    lock, layers = _layers(version, deb_store)
    rootfs = extract_layers(layers, tmp_path / "rootfs")
    result = run_in(rootfs, "/usr/bin/python3", "-c", PY_CHECK)
    assert result.returncode == 0, result.stderr
    assert f"({version.replace('.', ', ')}) shell-ok" in result.stdout
    shell = run_in(rootfs, "/bin/sh", "-c", "echo ok && awk 'BEGIN{print 1}' && id -un")
    assert shell.stdout.split() == ["ok", "1", "root"], shell.stderr
    status = (rootfs / "var/lib/dpkg/status").read_text()
    assert status.count("Status: install ok installed") == len(lock.packages)
    assert (rootfs / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert "Debian GNU/Linux" in (rootfs / "etc/os-release").read_text()


@needs_root
def test_a_manylinux_numpy_wheel_imports(deb_store: Store, tmp_path: Path) -> None:
    site = CACHE / "numpy-py311"
    if not (site / "numpy").is_dir():
        uv = shutil.which("uv") or str(Path(os.sys.executable).with_name("uv"))
        cmd = [uv, "pip", "install", "--quiet", "--target", str(site), "--python-platform", "x86_64-manylinux_2_28"]
        subprocess.run([*cmd, "--python-version", "3.11", "numpy"], check=True, timeout=300)
    _, layers = _layers("3.11", deb_store)
    rootfs = extract_layers(layers, tmp_path / "rootfs")
    shutil.copytree(site, rootfs / "usr/local/lib/python3.11/dist-packages", symlinks=True)
    result = run_in(rootfs, "/usr/bin/python3", "-c", "import numpy; print(numpy.arange(6).reshape(2, 3).sum())")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "15"


def test_the_lock_gives_the_same_layer_offline_and_warm_builds_hit_the_store(
    deb_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    online = Store(seed_store(deb_store.root, tmp_path / "online"))  # the layer is made here, never found
    _, (first,) = _layers("3.11", online)
    fresh = Store(tmp_path / "fresh")
    shutil.copytree(online.root / "debs", fresh.root / "debs", copy_function=os.link)

    def offline(*args, **kwargs):
        raise AssertionError("a build from a lock with the .debs in the store must not touch the network")

    monkeypatch.setattr(requests.Session, "get", offline)
    _, (second,) = _layers("3.11", fresh)
    assert (second.digest, second.diff_id) == (first.digest, first.diff_id)
    hits = fresh.stats.key_hits
    start = time.perf_counter()
    _, (warm,) = _layers("3.11", fresh)
    assert time.perf_counter() - start < 0.5
    assert warm == second and fresh.stats.key_hits == hits + 1


def test_arm64_base_builds_from_the_arm64_archive(deb_store: Store) -> None:
    _, (layer,) = _layers("3.11", deb_store, "linux/arm64")
    with tarfile.open(layer.path) as tar:
        names = set(tar.getnames())
    assert "usr/lib/aarch64-linux-gnu/libc.so.6" in names and "usr/bin/python3.11" in names
    assert ("etc/ld.so.cache" in names) == ld_cache_supported("arm64")


def test_extra_ca_certificates_join_the_bundle(deb_store: Store, tmp_path: Path) -> None:
    pem = tmp_path / "corp.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\nQ09SUA==\n-----END CERTIFICATE-----\n")
    store = Store(seed_store(deb_store.root, tmp_path / "store"))  # both layers made here: the CA is in the key
    _, (plain,) = _layers("3.11", store)
    _, (with_ca,) = _layers("3.11", store, extra_ca_certs=[pem])
    assert with_ca.digest != plain.digest
    with tarfile.open(with_ca.path) as tar:
        bundle = tar.extractfile("etc/ssl/certs/ca-certificates.crt").read()  # type: ignore[union-attr]
    assert bundle.endswith(pem.read_bytes()) and bundle.count(b"BEGIN CERTIFICATE") > 100
