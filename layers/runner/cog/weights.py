"""Fast ``.safetensors`` loading, straight to the GPU when there is one.

``load_safetensors(path, device="cuda")`` parses the header with ``json`` and streams the data section
through a ring of pinned host buffers: several threads ``pread`` chunks in parallel while a dedicated
CUDA stream copies finished chunks to one device allocation, so disk/page-cache reads and host-to-device
copies overlap. Tensors are views into that allocation. Without torch's CUDA (or with ``device="cpu"``)
the file is read into host memory instead. torch is imported only when this function is called.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import json
import os
import struct
from dataclasses import dataclass
from typing import Any

CHUNK_BYTES = 16 << 20
"""Size of one pinned staging buffer (and of one read and one copy)."""

MAX_STAGING_BUFFERS = 32
"""Pinned memory is slow to allocate (torch caches it after the first load): at most 32 x 16 MiB."""

MAX_READ_THREADS = 16
"""Page-cache reads run at a few GB/s per thread: enough threads to keep up with a PCIe 5 / NVLink-C2C copy."""

DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
}


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass(frozen=True)
class Header:
    """The parsed header: where the data section starts, its size, the tensors and ``__metadata__``."""

    data_start: int
    data_size: int
    tensors: tuple[TensorEntry, ...]
    metadata: dict[str, str]


def read_header(path: str | os.PathLike[str]) -> Header:
    """Parse a safetensors header (8-byte little-endian length, then JSON)."""
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        raw = json.loads(handle.read(length))
    metadata = raw.pop("__metadata__", {}) or {}
    tensors = tuple(
        TensorEntry(name, info["dtype"], tuple(info["shape"]), *info["data_offsets"]) for name, info in raw.items()
    )
    size = max((entry.end for entry in tensors), default=0)
    return Header(8 + length, size, tensors, metadata)


def load_safetensors(
    path: str | os.PathLike[str], device: str = "cuda", *, threads: int | None = None, chunk_bytes: int = CHUNK_BYTES
) -> dict[str, Any]:
    """Load every tensor of a ``.safetensors`` file onto ``device`` (falls back to CPU without CUDA)."""
    import torch

    header = read_header(path)
    target = torch.device(device)
    if target.type == "cuda" and not torch.cuda.is_available():
        target = torch.device("cpu")
    if target.type == "cuda":
        threads = threads or min(MAX_READ_THREADS, os.cpu_count() or 4)
        data = _read_to_cuda(torch, path, header, target, threads, chunk_bytes)
    else:
        data = _read_to_host(torch, path, header)
    return {entry.name: _tensor_view(torch, data, entry) for entry in header.tensors}


def _address_view(tensor: Any, size: int) -> memoryview:
    """A writable memoryview over the first ``size`` bytes of a contiguous CPU uint8 tensor."""
    return memoryview((ctypes.c_char * size).from_address(tensor.data_ptr())).cast("B")


def _pread_into(fd: int, view: memoryview, offset: int) -> None:
    while view:
        count = os.preadv(fd, [view], offset)
        if count == 0:
            raise EOFError("safetensors file is shorter than its header says")
        view = view[count:]
        offset += count


def _read_to_host(torch: Any, path: str | os.PathLike[str], header: Header) -> Any:
    data = torch.empty(header.data_size, dtype=torch.uint8)
    fd = os.open(path, os.O_RDONLY)
    try:
        if header.data_size:
            _pread_into(fd, _address_view(data, header.data_size), header.data_start)
    finally:
        os.close(fd)
    return data


def _read_to_cuda(
    torch: Any, path: str | os.PathLike[str], header: Header, device: Any, threads: int, chunk_bytes: int
) -> Any:
    """Pipeline: parallel preads into pinned buffers → non-blocking copies on a side stream.

    The main thread only waits for reads and queues copies; a reader waits for its slot's previous copy itself.
    """
    data = torch.empty(header.data_size, dtype=torch.uint8, device=device)
    chunks = [(start, min(chunk_bytes, header.data_size - start)) for start in range(0, header.data_size, chunk_bytes)]
    if not chunks:
        return data
    ring = min(len(chunks), 2 * threads, MAX_STAGING_BUFFERS)
    staging = [torch.empty(chunk_bytes, dtype=torch.uint8, pin_memory=True) for _ in range(ring)]
    views = [_address_view(buffer, chunk_bytes) for buffer in staging]
    copied = [None] * ring
    stream = torch.cuda.Stream(device=device)
    fd = os.open(path, os.O_RDONLY)
    try:
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:

            def fill(slot: int, start: int, size: int, reuse_after: Any) -> None:
                if reuse_after is not None:  # the slot's previous copy must have left the buffer
                    reuse_after.synchronize()
                _pread_into(fd, views[slot][:size], header.data_start + start)

            def read(index: int) -> concurrent.futures.Future[None]:
                start, size = chunks[index]
                slot = index % ring
                return pool.submit(fill, slot, start, size, copied[slot])

            pending = {index: read(index) for index in range(min(ring, len(chunks)))}
            with torch.cuda.stream(stream):
                for index, (start, size) in enumerate(chunks):
                    pending.pop(index).result()
                    slot = index % ring
                    data[start : start + size].copy_(staging[slot][:size], non_blocking=True)
                    event = torch.cuda.Event()
                    event.record(stream)
                    copied[slot] = event
                    if index + ring < len(chunks):
                        pending[index + ring] = read(index + ring)
        stream.synchronize()
    finally:
        os.close(fd)
    return data


def _tensor_view(torch: Any, data: Any, entry: TensorEntry) -> Any:
    dtype = getattr(torch, DTYPES[entry.dtype])
    raw = data[entry.begin : entry.end]
    itemsize = torch.empty((), dtype=dtype).element_size()
    if entry.begin % itemsize:
        raw = raw.clone()
    return raw.view(dtype).reshape(entry.shape)
