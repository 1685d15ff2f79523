"""Pull from a real registry into an OCI layout, verifying digests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ocibuild.errors import BuildError, UserInputError
from ocibuild.oci import (
    Compression,
    Entry,
    Image,
    ImageConfig,
    Index,
    Store,
    build_image,
    build_index,
    read_layout,
    write_layer,
)
from ocibuild.oci.descriptor import Platform
from ocibuild.oci.mediatypes import ImageFormat
from ocibuild.registry import Recorder, pull, push
from tests.registry.registry_helpers import FaultProxy

pytestmark = pytest.mark.integration


def test_pull_round_trip(registry, make_image, tmp_path):
    image = make_image(40)
    ref = f"{registry.host}/pull/model:v1"
    push(image, [ref], progress=Recorder())
    pulled = pull(ref, tmp_path / "layout", progress=Recorder())
    assert isinstance(pulled, Image) and pulled.digest == image.digest
    assert [layer.digest for layer in pulled.layers] == [layer.digest for layer in image.layers]
    again = read_layout(tmp_path / "layout", "v1")  # verifies every blob
    assert again.digest == image.digest and again.config_bytes == image.config_bytes
    by_digest = pull(f"{registry.host}/pull/model@{image.digest}", tmp_path / "by-digest", progress=Recorder())
    assert by_digest.digest == image.digest


def test_pull_docker_format_through_faults_into_store(registry, make_image, tmp_path):
    image = make_image(41, fmt=ImageFormat.DOCKER, size=2 << 20)
    push(image, [f"{registry.host}/pull/docker:v1"], progress=Recorder())
    store = Store(tmp_path / "cache")
    with FaultProxy(registry.host, seed=5, drop=0.15, error=0.1) as proxy:
        first = Recorder()
        pulled = pull(f"{proxy.host}/pull/docker:v1", tmp_path / "a", store=store, progress=first)
    assert pulled.digest == image.digest and pulled.format is ImageFormat.DOCKER
    assert first.count("downloaded") == 4
    second = Recorder()
    pull(f"{registry.host}/pull/docker:v1", tmp_path / "b", store=store, progress=second)
    assert second.count("cached") == 4


def test_pull_index_and_platform(registry, make_image, tmp_path):
    amd = make_image(42, platform=Platform("linux", "amd64"))
    arm = make_image(43, platform=Platform("linux", "arm64", "v8"))
    index = build_index([amd, arm])
    ref = f"{registry.host}/pull/multi:v1"
    push(index, [ref], progress=Recorder())
    whole = pull(ref, tmp_path / "all", progress=Recorder())
    assert isinstance(whole, Index) and whole.digest == index.digest
    assert {i.digest for i in whole.images} == {amd.digest, arm.digest}
    one = pull(ref, tmp_path / "arm", platform="linux/arm64", progress=Recorder())
    assert one.digest == arm.digest
    with pytest.raises(BuildError, match="no image for linux/s390x"):
        pull(ref, tmp_path / "none", platform="linux/s390x", progress=Recorder())


def test_pull_rejects_corrupted_blob(registry, make_image, tmp_path):
    image = make_image(44)
    ref = f"{registry.host}/pull/corrupt:v1"
    push(image, [ref], progress=Recorder())
    layer = image.layers[0].digest.split(":")[1]
    data = registry.root / "storage" / "docker/registry/v2/blobs/sha256" / layer[:2] / layer / "data"
    data.chmod(0o644)
    data.write_bytes(b"tampered" + data.read_bytes()[8:])
    with pytest.raises(BuildError, match="expected"):
        pull(ref, tmp_path / "layout", progress=Recorder())
    assert not (tmp_path / "layout").exists()


def test_pull_missing_tag(registry, tmp_path):
    with pytest.raises(BuildError, match="not found"):
        pull(f"{registry.host}/pull/nothing:v1", tmp_path / "layout", progress=Recorder())


def test_pull_into_a_folder_that_is_not_a_layout_is_refused(registry, make_image, tmp_path):
    image = make_image(45)
    ref = f"{registry.host}/pull/refuse:v1"
    push(image, [ref], progress=Recorder())
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n")
    with pytest.raises(UserInputError, match=f"{folder}: not empty and not an OCI layout"):
        pull(ref, folder, progress=Recorder())
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    result = subprocess.run(
        [sys.executable, "-m", "ocibuild", "pull", ref, str(folder), "--cache-dir", str(tmp_path / "c")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "not an OCI layout" in result.stderr
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    layout = tmp_path / "layout"
    pull(ref, layout, progress=Recorder())
    assert pull(ref, layout, progress=Recorder()).digest == image.digest  # a layout is written again in place


def test_run_of_a_reference_pulls_through_the_store_once_and_quietly(registry, store, tmp_path):
    layer = write_layer([Entry.file_from("bin/busybox", Path("/bin/busybox"), 0o755)], store, Compression.GZIP)
    image = build_image([layer], ImageConfig(env=["PATH=/bin"], cmd=["/bin/busybox", "echo", "from the registry"]))
    ref = f"{registry.host}/pull/runnable:v1"
    push(image, [ref], progress=Recorder())
    cache = tmp_path / "cache"

    def run_ref() -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "ocibuild", "run", "-q", "--cache-dir", str(cache), ref]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    first = run_ref()
    assert (first.returncode, first.stdout, first.stderr) == (0, "from the registry\n", "")
    hex_digest = layer.digest.split(":")[1]
    data = registry.root / "storage" / "docker/registry/v2/blobs/sha256" / hex_digest[:2] / hex_digest / "data"
    data.chmod(0o644)
    data.write_bytes(b"tampered" + data.read_bytes()[8:])  # a second download would fail its digest check
    second = run_ref()
    assert (second.returncode, second.stdout, second.stderr) == (0, "from the registry\n", "")
    assert not (cache / "pulled").exists()  # blobs stay in the store, not copied into a layout
