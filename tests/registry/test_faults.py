"""A flaky network (fault proxy with a fixed seed) and a registry that goes away."""

from __future__ import annotations

import time

import pytest

from ocibuild.errors import BuildError
from ocibuild.registry import Recorder, push
from tests.registry.registry_helpers import FaultProxy, blob_files, copy_to_layout, remote_tags, start_registry

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("chunk_size", [None, 1 << 20])
def test_push_through_faults_is_bit_identical(registry, make_image, tmp_path, chunk_size):
    image = make_image(30 + bool(chunk_size), layers=4, size=3 << 20)
    repo = f"faults/model{'-chunked' if chunk_size else ''}"
    with FaultProxy(registry.host, seed=11, drop=0.1, error=0.1) as proxy:
        rec = Recorder()
        push(image, [f"{proxy.host}/{repo}:v1"], progress=rec, chunk_size=chunk_size)
    faults = sum(n for kind, n in proxy.stats.items() if kind not in ("requests", "pass"))
    assert faults >= 3, proxy.stats
    assert any("retry" in note or "starting over" in note for note in rec.notes)
    copied = blob_files(copy_to_layout(f"{registry.host}/{repo}:v1", tmp_path / "copy"))
    expected = {digest.split(":")[1]: source for digest, source in image.blobs()}
    expected[image.digest.split(":")[1]] = image.manifest_bytes
    assert set(copied) == set(expected)
    for name, source in expected.items():
        assert copied[name] == (source if isinstance(source, bytes) else source.read_bytes())


def test_registry_going_down_mid_push_fails_fast_without_tag(registry, make_image):
    image = make_image(32, layers=4)
    with FaultProxy(registry.host, drop=0, error=0, down_after=6) as proxy:
        started = time.monotonic()
        with pytest.raises(BuildError) as caught:
            push(image, [f"{proxy.host}/down/model:v1"], progress=Recorder())
    assert time.monotonic() - started < 30
    assert "\n" not in str(caught.value) and "connection dropped" in str(caught.value)
    assert remote_tags(registry.host, "down/model") == []


def test_stopped_registry_fails_fast(make_image, tmp_path):
    reg = start_registry(tmp_path / "reg")
    reg.stop()
    started = time.monotonic()
    with pytest.raises(BuildError) as caught:
        push(make_image(33), [f"{reg.host}/gone/model:v1"], progress=Recorder())
    assert time.monotonic() - started < 30
    message = str(caught.value)
    assert "\n" not in message and reg.host in message and "connection refused" in message
