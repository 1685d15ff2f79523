"""Fast ``.safetensors`` loading, straight to the GPU when there is one.

``load_safetensors(path, device="cuda")`` checks the header (``read_header``: length cap, known dtypes, offsets
inside the file and consistent with the shapes, no overlaps), allocates one device buffer per file and streams the
data section into it: a scheduler thread hands chunks (64 MiB) to a pool of reader threads that ``preadv`` them,
in parallel pieces, into a ring of pinned staging buffers; the calling thread queues each filled buffer's copy on a
side CUDA stream (``non_blocking``) and records an event, and a staging buffer is read into again only once its
event has passed. Reading the next chunk (of the same file or, for a sharded checkpoint, of the next one) thus
overlaps the copy of the previous one. Tensors are views into the device buffer; one whose offset is not aligned
for its dtype is copied. On CPU the data is read in parallel pieces straight into one host buffer per file.

This module imports only the standard library: torch is imported when a loader is called.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import glob
import itertools
import json
import math
import os
import queue
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

CHUNK_BYTES = 64 << 20
"""One staging buffer, one host-to-device copy."""

STAGING_BUFFERS = 4
"""Pinned staging ring: one being copied, the next ones being read (4 x 64 MiB, cached by torch after a load)."""

MAX_READ_THREADS = 16
"""Page-cache reads run at a few GB/s per thread: enough of them to keep up with a PCIe 5 copy."""

MIN_PIECE_BYTES = 1 << 20
"""A chunk is split among the readers in pieces of at least this size."""

MAX_HEADER_BYTES = 100 << 20
"""The safetensors format's own limit on the JSON header."""

DTYPES = {
    "F64": ("float64", 8),
    "F32": ("float32", 4),
    "F16": ("float16", 2),
    "BF16": ("bfloat16", 2),
    "I64": ("int64", 8),
    "I32": ("int32", 4),
    "I16": ("int16", 2),
    "I8": ("int8", 1),
    "U64": ("uint64", 8),
    "U32": ("uint32", 4),
    "U16": ("uint16", 2),
    "U8": ("uint8", 1),
    "BOOL": ("bool", 1),
    "F8_E4M3": ("float8_e4m3fn", 1),
    "F8_E5M2": ("float8_e5m2", 1),
}
"""safetensors dtype -> (torch dtype name, bytes per element)."""


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass(frozen=True)
class Header:
    """The checked header: where the data section starts, how much of it the tensors use, the tensors, metadata."""

    data_start: int
    data_size: int
    tensors: tuple[TensorEntry, ...]
    metadata: dict[str, str]


@dataclass(frozen=True)
class _File:
    path: str
    header: Header
    fd: int


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        duplicate = next(key for index, (key, _) in enumerate(pairs) if key in dict(pairs[:index]))
        raise ValueError(f"duplicate key {duplicate!r}")
    return result


def _load_json(raw: bytes) -> Any:
    """Strict UTF-8 JSON with unique keys; raises ValueError (also for absurd nesting)."""
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys)
    except RecursionError as error:
        raise ValueError("nested too deeply") from error


def read_header(path: str | os.PathLike[str]) -> Header:
    """Parse and check a safetensors header (8-byte little-endian length, then JSON); ValueError names the file."""
    with open(path, "rb") as handle:
        file_size = os.fstat(handle.fileno()).st_size
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise ValueError(f"{path}: not a safetensors file: {file_size} bytes, shorter than the header length")
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_HEADER_BYTES:
            raise ValueError(f"{path}: header length {length} is over the {MAX_HEADER_BYTES >> 20} MiB limit")
        if 8 + length > file_size:
            raise ValueError(f"{path}: header length {length} runs past the end of the file ({file_size} bytes)")
        raw = handle.read(length)
    try:
        parsed = _load_json(raw)
    except ValueError as error:
        raise ValueError(f"{path}: header is not valid JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise ValueError(f"{path}: header is not a JSON object")
    metadata = parsed.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(value, str) for value in metadata.values()):
        raise ValueError(f"{path}: __metadata__ must map strings to strings")
    available = file_size - 8 - length
    tensors = tuple(_entry(path, name, info, available) for name, info in parsed.items())
    used = sorted((entry for entry in tensors if entry.end > entry.begin), key=lambda entry: entry.begin)
    for before, after in itertools.pairwise(used):
        if after.begin < before.end:
            raise ValueError(f"{path}: tensor {after.name!r}: data_offsets overlap those of {before.name!r}")
    return Header(8 + length, max((entry.end for entry in tensors), default=0), tensors, metadata)


def _entry(path: str | os.PathLike[str], name: str, info: Any, available: int) -> TensorEntry:
    def bad(problem: str) -> ValueError:
        return ValueError(f"{path}: tensor {name!r}: {problem}")

    if not isinstance(info, dict):
        raise bad("entry is not a JSON object")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise bad(f"unknown dtype {dtype!r} (known: {', '.join(DTYPES)})")
    if not isinstance(shape, list) or not all(type(size) is int and size >= 0 for size in shape):
        raise bad(f"shape {shape!r} is not a list of non-negative integers")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(type(offset) is int for offset in offsets):
        raise bad(f"data_offsets {offsets!r} is not a pair of integers")
    begin, end = offsets
    if not 0 <= begin <= end <= available:
        raise bad(f"data_offsets {offsets} out of range: the data section has {available} bytes")
    needed = math.prod(shape) * DTYPES[dtype][1]
    if end - begin != needed:
        raise bad(f"data_offsets span {end - begin} bytes but shape {shape} of {dtype} needs {needed}")
    return TensorEntry(name, dtype, tuple(shape), begin, end)


def read_index(path: str | os.PathLike[str]) -> tuple[str, dict[str, str]]:
    """The ``*.safetensors.index.json`` at ``path`` (or the only one in that directory): (its path, weight_map)."""
    index = os.fspath(path)
    if os.path.isdir(index):
        found = sorted(glob.glob(os.path.join(glob.escape(index), "*.safetensors.index.json")))
        if len(found) != 1:
            raise ValueError(f"{index}: expected one *.safetensors.index.json, found {len(found)}")
        index = found[0]
    with open(index, "rb") as handle:
        raw = handle.read(MAX_HEADER_BYTES + 1)
    if len(raw) > MAX_HEADER_BYTES:
        raise ValueError(f"{index}: over the {MAX_HEADER_BYTES >> 20} MiB limit for an index")
    try:
        parsed = _load_json(raw)
    except ValueError as error:
        raise ValueError(f"{index}: not valid JSON: {error}") from None
    weight_map = parsed.get("weight_map") if isinstance(parsed, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise ValueError(f"{index}: no weight_map (tensor name -> shard file) in the index")
    for name, shard in weight_map.items():
        if not isinstance(shard, str) or os.path.basename(shard) != shard or shard in ("", ".", ".."):
            raise ValueError(f"{index}: weight_map[{name!r}] = {shard!r} is not a file name next to the index")
    return index, weight_map


def load_safetensors(
    path: str | os.PathLike[str], device: str = "cuda", *, threads: int | None = None, chunk_bytes: int = CHUNK_BYTES
) -> dict[str, Any]:
    """Load every tensor of a ``.safetensors`` file onto ``device`` (CPU when torch has no CUDA).

    ``path`` may also be a sharded checkpoint's index json or its directory: see ``load_safetensors_sharded``.
    """
    if os.path.isdir(path) or os.fspath(path).endswith(".json"):
        return load_safetensors_sharded(path, device, threads=threads, chunk_bytes=chunk_bytes)
    return _load([os.fspath(path)], [read_header(path)], device, threads, chunk_bytes)


def load_safetensors_sharded(
    path: str | os.PathLike[str], device: str = "cuda", *, threads: int | None = None, chunk_bytes: int = CHUNK_BYTES
) -> dict[str, Any]:
    """Load a sharded checkpoint (``model-0000N-of-0000M.safetensors`` + its index json) into one dict.

    The shards stream through one pipeline, so file N+1 is read while file N is still being copied. Every tensor
    must be in the shard the index names, and every shard tensor in the index.
    """
    index, weight_map = read_index(path)
    folder = os.path.dirname(index)
    shards = sorted(set(weight_map.values()))
    paths = [os.path.join(folder, shard) for shard in shards]
    for shard_path in paths:
        if not os.path.isfile(shard_path):
            raise ValueError(f"{index}: shard {os.path.basename(shard_path)} does not exist")
    headers = [read_header(shard_path) for shard_path in paths]
    for shard, shard_path, header in zip(shards, paths, headers, strict=True):
        for entry in header.tensors:
            if weight_map.get(entry.name) != shard:
                raise ValueError(f"{shard_path}: tensor {entry.name!r} is not in {index} for this shard")
    counted = sum(len(header.tensors) for header in headers)
    if counted != len(weight_map):
        present = {entry.name for header in headers for entry in header.tensors}
        missing = next(name for name in weight_map if name not in present)
        raise ValueError(f"{index}: tensor {missing!r} is not in its shard {weight_map[missing]}")
    return _load(paths, headers, device, threads, chunk_bytes)


def _load(paths: list[str], headers: list[Header], device: str, threads: int | None, chunk_bytes: int) -> dict:
    if chunk_bytes < 1 or (threads is not None and threads < 0):
        raise ValueError(f"chunk_bytes ({chunk_bytes}) must be positive and threads ({threads}) not negative")
    import torch

    target = torch.device(device)
    if target.type == "cuda" and not torch.cuda.is_available():
        target = torch.device("cpu")
    threads = threads or min(MAX_READ_THREADS, os.cpu_count() or 4)
    with contextlib.ExitStack() as stack:
        files = []
        for path, header in zip(paths, headers, strict=True):
            fd = os.open(path, os.O_RDONLY)
            stack.callback(os.close, fd)
            files.append(_File(path, header, fd))
        if target.type == "cpu":
            buffers = _read_to_host(torch, files, threads, chunk_bytes)
        else:
            buffers = _stream_to_device(torch, files, target, threads, chunk_bytes)
    return {
        entry.name: _tensor_view(torch, buffer, file, entry)
        for file, buffer in zip(files, buffers, strict=True)
        for entry in file.header.tensors
    }


def _address_view(tensor: Any, size: int) -> memoryview:
    """A writable memoryview over the first ``size`` bytes of a contiguous CPU uint8 tensor."""
    if size == 0:
        return memoryview(bytearray())
    return memoryview((ctypes.c_char * size).from_address(tensor.data_ptr())).cast("B")


def _pieces(size: int, parts: int) -> Iterator[tuple[int, int]]:
    """Split ``[0, size)`` into about ``parts`` 4 KiB-aligned ranges of at least MIN_PIECE_BYTES."""
    step = max(MIN_PIECE_BYTES, -(-size // max(parts, 1)))
    step = -(-step // 4096) * 4096
    for start in range(0, size, step):
        yield start, min(start + step, size)


def _pread_into(file: _File, view: memoryview, offset: int) -> None:
    while view:
        count = os.preadv(file.fd, [view], offset)
        if count == 0:
            raise ValueError(f"{file.path}: the file ended early (did it change while loading?)")
        view = view[count:]
        offset += count


def _read_to_host(torch: Any, files: list[_File], threads: int, chunk_bytes: int) -> list[Any]:
    """Every file's data section into one host buffer each, in parallel pieces."""
    buffers = [torch.empty(file.header.data_size, dtype=torch.uint8) for file in files]
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        reads = [
            pool.submit(_pread_into, file, view[begin:end], file.header.data_start + begin)
            for file, buffer in zip(files, buffers, strict=True)
            for view in [_address_view(buffer, file.header.data_size)]
            for begin, end in _pieces(file.header.data_size, max(threads, -(-file.header.data_size // chunk_bytes)))
        ]
        for read in reads:
            read.result()
    return buffers


def _stream_to_device(torch: Any, files: list[_File], device: Any, threads: int, chunk_bytes: int) -> list[Any]:
    """Read chunks into a ring of staging buffers and copy each to its file's device buffer.

    On CUDA the staging buffers are pinned and the copies run asynchronously on a side stream, each followed by an
    event the scheduler waits on before reusing that buffer; on another device the copies are synchronous.
    """
    buffers = [torch.empty(file.header.data_size, dtype=torch.uint8, device=device) for file in files]
    chunks = [
        (file, buffer, start, min(chunk_bytes, file.header.data_size - start))
        for file, buffer in zip(files, buffers, strict=True)
        for start in range(0, file.header.data_size, chunk_bytes)
    ]
    if not chunks:
        return buffers
    cuda = device.type == "cuda"
    size = max(chunk[3] for chunk in chunks)
    staging = [torch.empty(size, dtype=torch.uint8, pin_memory=cuda) for _ in range(min(STAGING_BUFFERS, len(chunks)))]
    views = [_address_view(buffer, size) for buffer in staging]
    free: queue.SimpleQueue[tuple[int, Any] | None] = queue.SimpleQueue()
    for slot in range(len(staging)):
        free.put((slot, None))
    filled: queue.SimpleQueue[Any] = queue.SimpleQueue()
    stream = None
    if cuda:  # the side stream must not write into memory that work queued before this call may still read
        stream = torch.cuda.Stream(device=device)
        stream.wait_stream(torch.cuda.current_stream(device))

    def schedule(pool: concurrent.futures.ThreadPoolExecutor) -> None:
        try:
            for file, _, start, length in chunks:
                item = free.get()
                if item is None:
                    return
                slot, copied = item
                if copied is not None:  # the buffer's previous copy must be over before it is overwritten
                    copied.synchronize()
                reads = [
                    pool.submit(_pread_into, file, views[slot][begin:end], file.header.data_start + start + begin)
                    for begin, end in _pieces(length, threads)
                ]
                filled.put((slot, reads))
        except BaseException as error:  # handed to the calling thread, which raises it
            filled.put(error)

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        scheduler = threading.Thread(target=schedule, args=(pool,), name="safetensors-scheduler", daemon=True)
        scheduler.start()
        try:
            with torch.cuda.stream(stream) if cuda else contextlib.nullcontext():
                for _, buffer, start, length in chunks:
                    item = filled.get()
                    if isinstance(item, BaseException):
                        raise item
                    slot, reads = item
                    for read in reads:
                        read.result()
                    buffer[start : start + length].copy_(staging[slot][:length], non_blocking=cuda)
                    event = None
                    if cuda:
                        event = torch.cuda.Event()
                        event.record(stream)
                    free.put((slot, event))
            if cuda:
                stream.synchronize()
        finally:
            free.put(None)
            scheduler.join()
    return buffers


def _tensor_view(torch: Any, buffer: Any, file: _File, entry: TensorEntry) -> Any:
    name, itemsize = DTYPES[entry.dtype]
    dtype = getattr(torch, name, None)
    if dtype is None:
        raise ValueError(f"{file.path}: tensor {entry.name!r}: this torch ({torch.__version__}) has no {name}")
    raw = buffer[entry.begin : entry.end]
    if entry.begin % itemsize:
        raw = raw.clone()
    return raw.view(dtype).reshape(entry.shape)
