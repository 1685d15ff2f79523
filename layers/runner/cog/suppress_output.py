"""``cog.suppress_output.suppress_output()``: silence a noisy block of model code."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def suppress_output() -> Iterator[None]:
    """Discard stdout and stderr inside the block: Python writes and writes to file descriptors 1 and 2
    (C extensions, child processes); both are restored afterwards, even on an exception."""
    streams = sys.stdout, sys.stderr
    for stream in streams:
        stream.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with open(os.devnull, "w", encoding="utf-8") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            sys.stdout = sys.stderr = null
            try:
                yield
            finally:
                null.flush()
                sys.stdout, sys.stderr = streams
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        os.close(saved[0])
        os.close(saved[1])
