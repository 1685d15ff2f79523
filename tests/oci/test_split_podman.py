"""A layer split by path, pulled by podman, gives the same merged rootfs as the unsplit layer."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from ocibuild.oci import Compression, ImageConfig, Store, build_image, write_layer
from ocibuild.oci.split import split_entries
from tests.oci.podman_support import partial_pull_storage, podman, rootfs_listing
from tests.oci.test_split import tree

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _pulled_rootfs(ref: str) -> dict[str, tuple[int, str]]:
    """The merged rootfs of ``ref`` pulled into a fresh store (a cold node), as a listing."""
    storage = partial_pull_storage()
    try:
        pulled = podman(storage, "pull", "--tls-verify=false", ref)
        assert pulled.returncode == 0, pulled.stderr
        mount = podman(storage, "image", "mount", ref)
        assert mount.returncode == 0, mount.stderr
        try:
            return rootfs_listing(Path(mount.stdout.strip()))
        finally:
            podman(storage, "image", "unmount", "--all")
    finally:
        podman(storage, "rmi", "--all", "--force")
        shutil.rmtree(storage, ignore_errors=True)


@pytest.mark.integration
@pytest.mark.skipif(not shutil.which("podman") or not shutil.which("docker-registry"), reason="needs podman, registry")
@pytest.mark.skipif(os.geteuid() != 0, reason="podman overlay storage as root")
@pytest.mark.parametrize("compression", [Compression.GZIP, Compression.ZSTD_CHUNKED])
def test_podman_merges_split_parts_into_the_unsplit_rootfs(tmp_path, compression: Compression):
    sys.path.insert(0, str(SCRIPTS))
    from registry import start_registry

    from ocibuild.registry.push_image import push

    store = Store(tmp_path / "store")
    config = ImageConfig(cmd=["/bin/true"])
    whole = build_image([write_layer(tree(), store, Compression.GZIP, 1)], config)
    parts = [write_layer(part, store, compression, 1) for part in split_entries(tree(), 10_000)]
    split = build_image(parts, config)
    assert len(parts) > 2

    with start_registry(tmp_path / "registry") as reg:
        push(whole, [f"{reg.host}/split/model:whole"], insecure_registries=[reg.host])
        push(split, [f"{reg.host}/split/model:split"], insecure_registries=[reg.host])
        expected = _pulled_rootfs(f"{reg.host}/split/model:whole")
        got = _pulled_rootfs(f"{reg.host}/split/model:split")
    assert "pkg/private/secret.bin" in expected and "pkg/z/alias.py" in expected
    assert got == expected
