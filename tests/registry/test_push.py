"""Push against a real ``docker-registry``; check with skopeo and umoci what the registry holds."""

from __future__ import annotations

import json
import subprocess

import pytest

from ocibuild.oci import build_index
from ocibuild.oci.descriptor import Platform
from ocibuild.oci.mediatypes import DOCKER_MANIFEST, ImageFormat
from ocibuild.outputs import format_refs, write_digest_file, write_image_refs
from ocibuild.registry import Recorder, push
from tests.registry.registry_helpers import (
    blob_files,
    copy_to_layout,
    layout_manifest_digest,
    need,
    remote_digest,
    remote_tags,
)

pytestmark = pytest.mark.integration


def test_push_exact_digest_and_image_comes_back(registry, make_image, tmp_path):
    need("skopeo", "umoci")
    image = make_image(1)
    ref = f"{registry.host}/exact/model:v1"
    pushed = push(image, [ref, f"{registry.host}/exact/model:v2"], progress=Recorder())
    assert pushed == [f"{ref}@{image.digest}", f"{registry.host}/exact/model:v2@{image.digest}"]
    assert remote_digest(ref) == image.digest
    inspect = json.loads(
        subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}"], capture_output=True, check=True
        ).stdout
    )
    assert inspect["Digest"] == image.digest and sorted(inspect["RepoTags"]) == ["v1", "v2"]

    layout = copy_to_layout(ref, tmp_path / "copy")
    assert layout_manifest_digest(layout) == image.digest
    subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{layout}:pulled", str(tmp_path / "bundle")],
        capture_output=True,
        check=True,
    )
    rootfs = tmp_path / "bundle" / "rootfs" / "data"
    import random

    rng = random.Random(1)
    for i in range(3):
        assert (rootfs / f"file{i}.bin").read_bytes() == rng.randbytes((256 << 10) + i)


def test_second_push_uploads_nothing_and_other_repo_mounts(registry, make_image):
    image = make_image(2)
    first = Recorder()
    push(image, [f"{registry.host}/again/model:v1"], progress=first)
    assert first.count("uploaded") == 4  # config + 3 layers

    again = Recorder()
    push(image, [f"{registry.host}/again/model:v1"], progress=again)
    assert again.count("exists") == 4 and again.count("uploaded") == 0

    other = Recorder()
    push(image, [f"{registry.host}/again/other:v1"], progress=other)
    assert other.count("mounted") == 4 and other.count("uploaded") == 0
    assert remote_digest(f"{registry.host}/again/other:v1") == image.digest


def test_known_blobs_file_lets_a_new_process_mount(registry, make_image, tmp_path):
    image = make_image(3)
    known = tmp_path / "known-blobs.json"
    push(image, [f"{registry.host}/file/a:v1"], progress=Recorder(), known_blobs_file=known)
    assert image.layers[0].digest in json.loads(known.read_text())[registry.host]
    other = Recorder()
    push(image, [f"{registry.host}/file/b:v1"], progress=other, known_blobs_file=known)
    assert other.count("mounted") == 4


def test_chunked_upload(registry, make_image):
    image = make_image(4, size=3 << 20)
    rec = Recorder()
    push(image, [f"{registry.host}/chunked/model:v1"], progress=rec, chunk_size=1 << 20)
    assert rec.count("uploaded") == 4
    assert remote_digest(f"{registry.host}/chunked/model:v1") == image.digest


def test_docker_format(registry, make_image, tmp_path):
    need("umoci")
    image = make_image(5, fmt=ImageFormat.DOCKER)
    assert image.media_type == DOCKER_MANIFEST
    ref = f"{registry.host}/docker/model:v1"
    push(image, [ref], progress=Recorder())
    assert remote_digest(ref) == image.digest
    layout = copy_to_layout(ref, tmp_path / "copy", preserve=False)  # umoci reads OCI types only
    subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{layout}:pulled", str(tmp_path / "bundle")],
        capture_output=True,
        check=True,
    )
    assert (tmp_path / "bundle" / "rootfs" / "data" / "file0.bin").stat().st_size == 256 << 10


def test_index_children_by_digest_then_tag(registry, make_image):
    amd = make_image(6, platform=Platform("linux", "amd64"))
    arm = make_image(7, platform=Platform("linux", "arm64"))
    index = build_index([amd, arm])
    ref = f"{registry.host}/multi/model:v1"
    assert push(index, [ref], progress=Recorder()) == [f"{ref}@{index.digest}"]
    assert remote_digest(ref) == index.digest
    for child in (amd, arm):
        assert remote_digest(f"{registry.host}/multi/model@{child.digest}") == child.digest
    assert remote_tags(registry.host, "multi/model") == ["v1"]


def test_push_by_digest_only(registry, make_image):
    image = make_image(8)
    ref = f"{registry.host}/bydigest/model@{image.digest}"
    assert push(image, [ref], progress=Recorder()) == [ref]
    assert remote_digest(ref) == image.digest
    assert remote_tags(registry.host, "bydigest/model") == []


def test_refs_output_files(registry, make_image, tmp_path):
    image = make_image(9)
    pushed = push(image, [f"{registry.host}/out/model:a", f"{registry.host}/out/model:b"], progress=Recorder())
    assert format_refs(pushed) == "".join(f"{r}\n" for r in pushed)
    write_image_refs(tmp_path / "refs.txt", pushed)
    write_digest_file(tmp_path / "digest.txt", image.digest)
    assert (tmp_path / "refs.txt").read_text().splitlines() == pushed
    assert (tmp_path / "digest.txt").read_text() == image.digest


def test_layout_blobs_match_after_copy(registry, make_image, store, tmp_path):
    """Every blob skopeo gets back is byte-identical to the one in our store."""
    image = make_image(10)
    ref = f"{registry.host}/bits/model:v1"
    push(image, [ref], progress=Recorder())
    copied = blob_files(copy_to_layout(ref, tmp_path / "copy"))
    for layer in image.layers:
        assert copied[layer.digest.split(":")[1]] == layer.path.read_bytes()
    assert copied[image.digest.split(":")[1]] == image.manifest_bytes
