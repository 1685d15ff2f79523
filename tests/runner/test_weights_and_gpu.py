"""The safetensors loader (checked on CPU against a file written by hand) and GPU probing without a GPU."""

from __future__ import annotations

import json
import struct
import sys

import pytest

from tests.runner.harness import RUNNER_ROOT

sys.path.insert(0, str(RUNNER_ROOT))

from cog import gpu, weights

TENSORS = {
    "a.f32": ("F32", [2, 3], struct.pack("<6f", *[0.5, -1.0, 2.0, 3.25, 4.0, -5.5])),
    "b.i64": ("I64", [3], struct.pack("<3q", 1, -2, 1 << 40)),
    "c.u8": ("U8", [5], bytes([1, 2, 3, 4, 255])),
    "d.f16": ("F16", [2], struct.pack("<2e", 1.5, -0.25)),
    "e.empty": ("F32", [0], b""),
}


def write_safetensors(path, tensors=TENSORS, metadata=None):
    header, blob = {}, b""
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    if metadata:
        header["__metadata__"] = metadata
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + blob)
    return path


def test_read_header(tmp_path):
    header = weights.read_header(write_safetensors(tmp_path / "w.safetensors", metadata={"format": "pt"}))
    assert header.metadata == {"format": "pt"}
    assert [entry.name for entry in header.tensors] == list(TENSORS)
    assert header.data_size == sum(len(data) for _, _, data in TENSORS.values())
    assert header.tensors[0].shape == (2, 3)


def test_load_safetensors_on_cpu_matches_the_file(tmp_path):
    torch = pytest.importorskip("torch")
    loaded = weights.load_safetensors(write_safetensors(tmp_path / "w.safetensors"), device="cuda")
    assert loaded["a.f32"].device.type in ("cpu", "cuda")
    loaded = {name: tensor.cpu() for name, tensor in loaded.items()}
    assert torch.equal(loaded["a.f32"], torch.tensor([[0.5, -1.0, 2.0], [3.25, 4.0, -5.5]]))
    assert torch.equal(loaded["b.i64"], torch.tensor([1, -2, 1 << 40]))
    assert torch.equal(loaded["c.u8"], torch.tensor([1, 2, 3, 4, 255], dtype=torch.uint8))
    assert torch.equal(loaded["d.f16"], torch.tensor([1.5, -0.25], dtype=torch.float16))
    assert loaded["e.empty"].shape == (0,)


def test_load_safetensors_handles_unaligned_offsets_and_many_chunks(tmp_path):
    torch = pytest.importorskip("torch")
    values = list(range(1000))
    tensors = {"pad": ("U8", [3], b"\x00\x01\x02"), "big": ("I32", [1000], struct.pack("<1000i", *values))}
    loaded = weights.load_safetensors(write_safetensors(tmp_path / "w.safetensors", tensors), device="cpu")
    assert torch.equal(loaded["big"], torch.tensor(values, dtype=torch.int32))


def test_gpu_probe_is_empty_without_a_gpu():
    assert isinstance(gpu.describe(), list)
