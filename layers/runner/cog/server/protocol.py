"""Messages between the server and its worker: length-prefixed pickles over a pair of pipes.

Server → worker: ``("predict", job)``, ``("cancel", id)``, ``("healthcheck", token)``, ``("shutdown",)``.
Worker → server: ``("ready", info)``, ``("setup_failed", error)``, ``("log", id, source, text)``,
``("metric", id, name, value, mode)``, ``("output", id, chunk)``, ``("done", id, result)``,
``("health", token, error)``.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import threading
from dataclasses import dataclass
from typing import Any

HEADER = struct.Struct(">I")


@dataclass
class Job:
    """One prediction (or training) as sent by the server."""

    id: str
    input: dict[str, Any]
    context: dict[str, str]
    training: bool = False


@dataclass
class Result:
    status: str
    output: Any = None
    error: str | None = None
    detail: list[dict[str, Any]] | None = None


def encode(message: tuple[Any, ...]) -> bytes:
    """One frame: a 4-byte big-endian length, then the pickled message."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(payload)) + payload


class FrameDecoder:
    """Incremental decoder: feed bytes, get complete messages."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[Any, ...]]:
        self._buffer += data
        messages = []
        while len(self._buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(self._buffer)
            end = HEADER.size + size
            if len(self._buffer) < end:
                break
            messages.append(pickle.loads(self._buffer[HEADER.size : end]))
            del self._buffer[:end]
        return messages


class PipeChannel:
    """Blocking, thread-safe message channel over two file descriptors (used by the worker)."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._read_fd = read_fd
        self._write_fd = write_fd
        self._decoder = FrameDecoder()
        self._pending: list[tuple[Any, ...]] = []
        self._write_lock = threading.Lock()

    def send(self, *message: Any) -> None:
        """Write one whole frame; the worker's cancel signal is held meanwhile, so it never cuts a frame short."""
        frame = memoryview(encode(message))
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        try:
            with self._write_lock:
                while frame:
                    frame = frame[os.write(self._write_fd, frame) :]
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)

    def receive(self) -> tuple[Any, ...] | None:
        """The next message, or ``None`` once the server has closed its end."""
        while not self._pending:
            data = os.read(self._read_fd, 1 << 16)
            if not data:
                return None
            self._pending.extend(self._decoder.feed(data))
        return self._pending.pop(0)
