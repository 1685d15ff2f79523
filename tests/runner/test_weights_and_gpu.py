"""The safetensors loader (checked on CPU against a file written by hand) and GPU probing without a GPU."""

from __future__ import annotations

import json
import os
import struct
import subprocess
from pathlib import Path

import pytest

from cog import gpu, weights
from tests.runner.harness import RUNNER_ROOT

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


TORCH_WHEELS = Path("/opt/wheels")
TORCH_CHECK = """
import sys, torch
from cog import weights
path, device = sys.argv[1], sys.argv[2]
loaded = {name: t.cpu() for name, t in weights.load_safetensors(path, device=device).items()}
assert torch.equal(loaded["a.f32"], torch.tensor([[0.5, -1.0, 2.0], [3.25, 4.0, -5.5]]))
assert torch.equal(loaded["b.i64"], torch.tensor([1, -2, 1 << 40]))
assert torch.equal(loaded["c.u8"], torch.tensor([1, 2, 3, 4, 255], dtype=torch.uint8))
assert torch.equal(loaded["d.f16"], torch.tensor([1.5, -0.25], dtype=torch.float16))
assert loaded["e.empty"].shape == (0,)
assert torch.equal(loaded["big"], torch.arange(1000, dtype=torch.int32))
print("ok", device)
"""


@pytest.fixture(scope="session")
def torch_python() -> str:
    """A venv with the CPU torch wheel from the local wheel folder (uv ignores pip's config, so it is named)."""
    wheels = sorted(TORCH_WHEELS.glob("torch-*+cpu-cp311-*.whl"))
    if not wheels:
        pytest.skip(f"no CPU torch wheel for Python 3.11 in {TORCH_WHEELS}")
    venv = Path.home() / ".cache" / "ocibuild-test" / "torch-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        from uv import find_uv_bin

        uv = find_uv_bin()
        subprocess.run([uv, "venv", "--quiet", "--python", "3.11", str(venv)], check=True)
        subprocess.run(
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--python",
                str(python),
                "--find-links",
                str(TORCH_WHEELS),
                wheels[-1].name.split("-")[0] + "==" + wheels[-1].name.split("-")[1],
            ],
            check=True,
        )
    return str(python)


@pytest.mark.integration
@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_load_safetensors_with_real_torch_matches_the_file(tmp_path, torch_python, device):
    """Unaligned offsets, many chunks, every dtype: the loaded tensors equal what was written (CPU fallback when
    there is no GPU)."""
    tensors = {
        **TENSORS,
        "pad": ("U8", [3], b"\x00\x01\x02"),
        "big": ("I32", [1000], struct.pack("<1000i", *range(1000))),
    }
    path = write_safetensors(tmp_path / "w.safetensors", tensors)
    env = {**os.environ, "PYTHONPATH": str(RUNNER_ROOT)}
    result = subprocess.run(
        [torch_python, "-c", TORCH_CHECK, str(path), device], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"ok {device}"


def test_gpu_probe_is_empty_without_a_gpu():
    assert isinstance(gpu.describe(), list)
