"""The safetensors loader against files written by the real ``safetensors`` library (and, for what it never
writes, misaligned offsets and hostile headers, by hand from the spec), and GPU probing without a GPU.

Header checks run here with the standard library; loading runs in a venv with the CPU torch wheel, in a subprocess.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import struct
import subprocess
from pathlib import Path

import pytest
from safetensors import TensorSpec, deserialize, serialize_file

from cog import gpu, weights
from tests.runner.harness import RUNNER_ROOT

LIBRARY_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
                  "I32": "int32", "I8": "int8", "U8": "uint8", "BOOL": "bool"}  # fmt: skip
ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I8": 1, "U8": 1, "BOOL": 1}


def sample(dtype: str, shape: list[int], seed: int) -> tuple[str, list[int], bytes]:
    """Random bytes for a tensor (0/1 for BOOL): compared byte for byte, so NaN patterns are fine."""
    count = 1
    for size in shape:
        count *= size
    generator = random.Random(seed)
    data = (
        bytes(generator.randrange(2) for _ in range(count))
        if dtype == "BOOL"
        else generator.randbytes(count * ITEMSIZE[dtype])
    )
    return dtype, shape, data


TENSORS = {
    "layer.f32": sample("F32", [3, 5], 1),
    "layer.f16": sample("F16", [7], 2),
    "layer.bf16": sample("BF16", [2, 2, 3], 3),
    "layer.i64": sample("I64", [4], 4),
    "layer.u8": sample("U8", [9], 5),
    "layer.bool": sample("BOOL", [6], 6),
    "layer.f64": sample("F64", [2], 7),
    "layer.i32": sample("I32", [], 8),
    "layer.i8": sample("I8", [1, 3], 9),
    "empty.f32": sample("F32", [0, 3], 10),
    "empty.bool": sample("BOOL", [0], 11),
    "big.f32": sample("F32", [300, 257], 12),  # 308 KB: several chunks of the 64 KiB used below
}


def write_with_library(path: Path, tensors: dict, metadata: dict | None = None) -> Path:
    buffers = {name: ctypes.create_string_buffer(data, len(data)) for name, (_, _, data) in tensors.items()}
    specs = {
        name: TensorSpec(
            dtype=LIBRARY_DTYPES[dtype], shape=shape, data_ptr=ctypes.addressof(buffers[name]), data_len=len(data)
        )
        for name, (dtype, shape, data) in tensors.items()
    }
    serialize_file(specs, str(path), metadata=metadata)
    return path


def write_by_hand(path: Path, header: dict | bytes, blob: bytes = b"", length: int | None = None) -> Path:
    """The spec: 8-byte little-endian header length, the JSON header, then the data (no alignment enforced)."""
    encoded = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded) if length is None else length) + encoded + blob)
    return path


def packed_header(tensors: dict) -> tuple[dict, bytes]:
    """Header and data with tensors back to back in the given order: offsets need not be aligned."""
    header, blob = {}, b""
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    return header, blob


MISALIGNED = {
    "pad": sample("U8", [3], 20),
    "odd.f32": sample("F32", [5], 21),
    "odd.i64": sample("I64", [3], 22),
    "odd.bf16": sample("BF16", [1], 23),
    "odd.empty": sample("F16", [0], 24),
    "odd.bool": sample("BOOL", [2], 25),
}


def test_header_matches_the_library(tmp_path):
    path = write_with_library(tmp_path / "w.safetensors", TENSORS, metadata={"format": "pt", "note": "x"})
    header = weights.read_header(path)
    assert header.metadata == {"format": "pt", "note": "x"}
    raw = path.read_bytes()
    data = raw[header.data_start :]
    assert header.data_size == len(data)
    reference = dict(deserialize(raw))
    assert {entry.name for entry in header.tensors} == set(TENSORS) == set(reference)
    for entry in header.tensors:
        dtype, shape, expected = TENSORS[entry.name]
        assert (entry.dtype, list(entry.shape)) == (dtype, shape)
        assert data[entry.begin : entry.end] == expected == bytes(reference[entry.name]["data"])


def test_header_of_misaligned_tensors(tmp_path):
    header, blob = packed_header(MISALIGNED)
    parsed = weights.read_header(write_by_hand(tmp_path / "m.safetensors", header, blob))
    assert [(entry.name, entry.begin) for entry in parsed.tensors] == [
        ("pad", 0), ("odd.f32", 3), ("odd.i64", 23), ("odd.bf16", 47), ("odd.empty", 49), ("odd.bool", 49)
    ]  # fmt: skip


def good_entry(**changes) -> dict:
    return {"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], **changes}}


HOSTILE = {
    "tiny file": (b"", None, b"", "shorter than the header length"),
    "huge header length": (b"{}", 1 << 62, b"", "over the 100 MiB limit"),
    "header past the end": (b"{}", 4096, b"", "runs past the end of the file"),
    "not JSON": (b"{nope", None, b"", "not valid JSON"),
    "not UTF-8": (b'{"\xff": 1}', None, b"", "not valid JSON"),
    "deep nesting": (b"[" * 100_000 + b"]" * 100_000, None, b"", "not valid JSON"),
    "not an object": (b"[1, 2]", None, b"", "not a JSON object"),
    "duplicate tensor": (b'{"t": {}, "t": {}}', None, b"", "duplicate key 't'"),
    "metadata not strings": ({"__metadata__": {"a": 1}}, None, b"", "__metadata__ must map strings to strings"),
    "entry not an object": ({"t": [1]}, None, b"", "tensor 't': entry is not a JSON object"),
    "unknown dtype": (good_entry(dtype="F128"), None, b"\0" * 8, "tensor 't': unknown dtype 'F128'"),
    "negative shape": (good_entry(shape=[-2]), None, b"\0" * 8, "tensor 't': shape [-2]"),
    "float shape": (good_entry(shape=[2.0]), None, b"\0" * 8, "tensor 't': shape [2.0]"),
    "offsets not a pair": (good_entry(data_offsets=[0]), None, b"\0" * 8, "tensor 't': data_offsets [0]"),
    "boolean offsets": (good_entry(data_offsets=[False, 8]), None, b"\0" * 8, "data_offsets [False, 8]"),
    "offsets past the end": (good_entry(data_offsets=[0, 8]), None, b"\0" * 4, "out of range: the data section"),
    "negative offset": (good_entry(data_offsets=[-8, 0]), None, b"\0" * 8, "data_offsets [-8, 0] out of range"),
    "reversed offsets": (good_entry(data_offsets=[8, 0]), None, b"\0" * 8, "out of range"),
    "span not the shape": (good_entry(shape=[3]), None, b"\0" * 12, "span 8 bytes but shape [3] of F32 needs 12"),
    "huge shape": (good_entry(shape=[1 << 40, 1 << 40]), None, b"\0" * 8, "needs 4835703278458516698824704"),
    "overlap": (
        {**good_entry(), "u": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}},
        None,
        b"\0" * 8,
        "tensor 'u': data_offsets overlap those of 't'",
    ),
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_hostile_headers_are_one_clear_value_error(tmp_path, case):
    header, length, blob, message = HOSTILE[case]
    path = tmp_path / "hostile.safetensors"
    if header == b"" and length is None:
        path.write_bytes(b"\x01\x02")
    else:
        write_by_hand(path, header, blob, length)
    with pytest.raises(ValueError) as caught:
        weights.read_header(path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def write_sharded(folder: Path, tensors: dict, shards: int = 3) -> dict:
    """``model-0000N-of-0000M.safetensors`` and ``model.safetensors.index.json``, as transformers writes them."""
    names = list(tensors)
    weight_map = {}
    for index in range(shards):
        shard = f"model-{index + 1:05d}-of-{shards:05d}.safetensors"
        part = {name: tensors[name] for name in names[index::shards]}
        write_with_library(folder / shard, part, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, shard))
    index = {"metadata": {"total_size": sum(len(data) for _, _, data in tensors.values())}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return weight_map


def test_sharded_index_must_match_the_shards(tmp_path):
    """Checked before any data is read (and before torch is imported)."""
    weight_map = write_sharded(tmp_path, TENSORS)
    index = tmp_path / "model.safetensors.index.json"
    cases = {
        "not a file name": ({**weight_map, "layer.u8": "../model.safetensors"}, "is not a file name next to the index"),
        "missing shard": ({**weight_map, "layer.u8": "model-00009-of-00009.safetensors"}, "does not exist"),
        "tensor in another shard": ({**weight_map, "layer.u8": "model-00001-of-00003.safetensors"}, "'layer.u8'"),
        "tensor in no shard": ({**weight_map, "ghost": "model-00001-of-00003.safetensors"}, "'ghost' is not in"),
        "no weight_map": ({}, "no weight_map"),
    }
    for case, (mapping, message) in cases.items():
        index.write_text(json.dumps({"weight_map": mapping}))
        with pytest.raises(ValueError, match=r"\.safetensors") as caught:
            weights.load_safetensors_sharded(tmp_path, device="cpu")
        assert message in str(caught.value), case
    (tmp_path / "other.safetensors.index.json").write_text("{}")
    with pytest.raises(ValueError, match=r"expected one \*\.safetensors\.index\.json, found 2"):
        weights.load_safetensors(tmp_path, device="cpu")


TORCH_WHEELS = Path("/opt/wheels")
STAGED = """
def staged():  # the CUDA pipeline's chunking and staging ring, with synchronous CPU copies, for the host path
    weights._read_to_host = lambda torch, files, threads, chunk: weights._stream_to_device(
        torch, files, torch.device("cpu"), threads, chunk)
"""
LOAD_AND_DUMP = """
import json, sys, torch
from cog import weights
jobs, out = json.loads(sys.argv[1]), {}
for job in jobs:
    if job["mode"] == "staged":
        staged()
    loaded = (weights.load_safetensors_sharded if job["sharded"] else weights.load_safetensors)(
        job["path"], device=job["device"], threads=job["threads"], chunk_bytes=job["chunk"])
    storages = {t.untyped_storage().data_ptr() for t in loaded.values() if t.numel()}
    out[job["name"]] = {
        "shared_storages": len(storages),
        "tensors": {n: [str(t.dtype), list(t.shape), str(t.device), t.is_contiguous(),
                        bytes(t.reshape(-1).view(torch.uint8).tolist()).hex()] for n, t in loaded.items()},
    }
print(json.dumps(out))
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


TORCH_NAMES = {"F64": "torch.float64", "F32": "torch.float32", "F16": "torch.float16", "BF16": "torch.bfloat16",
               "I64": "torch.int64", "I32": "torch.int32", "I8": "torch.int8", "U8": "torch.uint8",
               "BOOL": "torch.bool"}  # fmt: skip


def assert_same(loaded: dict, expected: dict) -> None:
    assert set(loaded) == set(expected)
    for name, (dtype, shape, data) in expected.items():
        assert loaded[name] == [TORCH_NAMES[dtype], shape, "cpu", True, data.hex()], name


@pytest.mark.integration
def test_loaded_tensors_equal_what_was_written(tmp_path, torch_python):
    """Every dtype, empty and 0-d tensors, misaligned offsets, a sharded checkpoint; the host path, the CUDA
    request falling back to it, and the staged pipeline with a 64 KiB chunk (many chunks through a 4-buffer ring,
    across files)."""
    single = write_with_library(tmp_path / "w.safetensors", TENSORS, metadata={"format": "pt"})
    header, blob = packed_header(MISALIGNED)
    misaligned = write_by_hand(tmp_path / "m.safetensors", header, blob)
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    write_sharded(sharded, TENSORS)
    cases = {
        "cpu": (single, False, "cpu", TENSORS),
        "cuda": (single, False, "cuda", TENSORS),
        "staged": (single, False, "cpu", TENSORS),
        "misaligned": (misaligned, False, "cpu", MISALIGNED),
        "misaligned-staged": (misaligned, False, "cpu", MISALIGNED),
        "sharded-dir": (sharded, True, "cpu", TENSORS),
        "sharded-index": (sharded / "model.safetensors.index.json", False, "cuda", TENSORS),
        "sharded-staged": (sharded, True, "cpu", TENSORS),
    }
    jobs = [
        {"name": name, "path": str(path), "sharded": is_sharded, "device": device, "threads": 3, "chunk": 65536,
         "mode": "staged" if "staged" in name else "direct"}
        for name, (path, is_sharded, device, _) in cases.items()
    ]  # fmt: skip
    jobs.sort(key=lambda job: job["mode"])  # "staged" rebinds the host path for the rest of the process
    env = {**os.environ, "PYTHONPATH": str(RUNNER_ROOT)}
    result = subprocess.run(
        [torch_python, "-c", STAGED + LOAD_AND_DUMP, json.dumps(jobs)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    for name, (_, _, _, expected) in cases.items():
        assert_same(out[name]["tensors"], expected)
    assert out["cpu"]["shared_storages"] == 1  # views into one buffer
    assert out["sharded-dir"]["shared_storages"] == 3  # one buffer per shard


TRUNCATE_AND_LOAD = """
import os, sys, torch
from cog import weights
path, mode = sys.argv[1], sys.argv[2]
if mode == "staged":
    staged()
header = weights.read_header(path)
os.truncate(path, header.data_start + 20000)  # in the 2nd of ~20 chunks: most are still to come
try:
    weights._load([path], [header], "cpu", 3, 16384)
except ValueError as error:
    print(error)
"""


@pytest.mark.integration
@pytest.mark.parametrize("mode", ["direct", "staged"])
def test_a_file_cut_short_while_loading_is_a_value_error(tmp_path, torch_python, mode):
    """The reader's error reaches the caller through the pipeline, which then stops (no hang, no crash)."""
    path = write_with_library(tmp_path / "w.safetensors", TENSORS)
    env = {**os.environ, "PYTHONPATH": str(RUNNER_ROOT)}
    result = subprocess.run(
        [torch_python, "-c", STAGED + TRUNCATE_AND_LOAD, str(path), mode],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{path}: the file ended early (did it change while loading?)"


def test_gpu_probe_is_empty_without_a_gpu():
    assert isinstance(gpu.describe(), list)
