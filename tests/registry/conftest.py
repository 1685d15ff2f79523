"""Fixtures for registry tests: real ``docker-registry`` processes on free loopback ports and small test images."""

from __future__ import annotations

import random

import pytest

from ocibuild.oci import Compression, Entry, ImageConfig, Store, build_image, write_layer
from ocibuild.oci.mediatypes import ImageFormat
from tests.registry.registry_helpers import PASSWORD, USER, need, start_registry


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    need("docker-registry")
    with start_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory):
    need("docker-registry")
    with start_registry(tmp_path_factory.mktemp("auth-registry"), auth=(USER, PASSWORD)) as reg:
        yield reg


@pytest.fixture(autouse=True)
def _no_ambient_credentials(monkeypatch, tmp_path):
    """Tests never read the developer's docker config, containers auth files or registry env vars."""
    for var in ("REGISTRY_USERNAME", "REGISTRY_PASSWORD", "OCIBUILD_REGISTRY_USERNAME", "OCIBUILD_REGISTRY_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "containers-auth.json"))


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "store")


@pytest.fixture
def make_image(store):
    """``make_image(seed, layers=3, size=...)``: an image of random files, one file per layer."""

    def build(seed: int, layers: int = 3, size: int = 256 << 10, fmt: ImageFormat = ImageFormat.OCI, platform=None):
        rng = random.Random(seed)
        blobs = [
            write_layer(
                [Entry.directory("data"), Entry.file(f"data/file{i}.bin", rng.randbytes(size + i))],
                store,
                Compression.GZIP,
            )
            for i in range(layers)
        ]
        config = ImageConfig(cmd=["/bin/sh"], labels={"seed": str(seed)})
        if platform is not None:
            config.platform = platform
        return build_image(blobs, config, fmt=fmt)

    return build
