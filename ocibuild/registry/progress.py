"""Progress reporting for pushes and pulls: a callback interface, a rich bar per blob on a TTY, plain lines in CI."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Progress:
    """Callbacks a push or pull makes; every method may be called from several threads. The base does nothing."""

    def blob_started(self, digest: str, size: int) -> None:
        """Work on a blob begins (after the existence check found it missing)."""

    def blob_progress(self, digest: str, done: int) -> None:
        """``done`` bytes of the blob are sent/received (may go back after a restarted transfer)."""

    def blob_finished(self, digest: str, size: int, outcome: str) -> None:
        """``outcome``: ``exists``, ``mounted``, ``uploaded``, ``cached`` or ``downloaded``."""

    def note(self, text: str) -> None:
        """A one-line event worth showing (a manifest pushed, a retry)."""

    def close(self) -> None:
        """The operation ended (successfully or not)."""


class Recorder(Progress):
    """Keeps every blob outcome; tests and callers use it to check what was transferred."""

    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}
        self.notes: list[str] = []
        self._lock = threading.Lock()

    def blob_finished(self, digest: str, size: int, outcome: str) -> None:
        with self._lock:
            self.outcomes[digest] = outcome

    def note(self, text: str) -> None:
        with self._lock:
            self.notes.append(text)

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes.values() if o == outcome)


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} GB"


class PlainProgress(Progress):
    """One line per finished blob and per note, for logs and CI."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._started: dict[str, float] = {}
        self._lock = threading.Lock()

    def _line(self, text: str) -> None:
        with self._lock:
            print(text, file=self._stream, flush=True)

    def blob_started(self, digest: str, size: int) -> None:
        self._started[digest] = time.monotonic()

    def blob_finished(self, digest: str, size: int, outcome: str) -> None:
        short = digest.removeprefix("sha256:")[:12]
        if outcome in ("uploaded", "downloaded"):
            seconds = max(time.monotonic() - self._started.get(digest, time.monotonic()), 1e-6)
            self._line(f"{short}: {outcome} {_human(size)} in {seconds:.1f} s ({_human(size / seconds)}/s)")
        else:
            self._line(f"{short}: {outcome}")

    def note(self, text: str) -> None:
        self._line(text)


class RichProgress(Progress):
    """A rich progress bar per blob (bytes, rate) on a terminal."""

    def __init__(self, stream: TextIO | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as Bars

        self._bars = Bars(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(file=stream or sys.stderr),
            transient=False,
        )
        self._tasks: dict[str, int] = {}
        self._lock = threading.Lock()
        self._bars.start()

    def blob_started(self, digest: str, size: int) -> None:
        with self._lock:
            self._tasks[digest] = self._bars.add_task(digest.removeprefix("sha256:")[:12], total=size)

    def blob_progress(self, digest: str, done: int) -> None:
        task = self._tasks.get(digest)
        if task is not None:
            self._bars.update(task, completed=done)

    def blob_finished(self, digest: str, size: int, outcome: str) -> None:
        with self._lock:
            task = self._tasks.get(digest)
            if task is None:
                task = self._tasks[digest] = self._bars.add_task("", total=size)
        self._bars.update(task, completed=size, description=f"{digest.removeprefix('sha256:')[:12]} {outcome}")

    def note(self, text: str) -> None:
        self._bars.console.print(text)

    def close(self) -> None:
        self._bars.stop()


def default_progress(stream: TextIO | None = None) -> Progress:
    """Bars on a terminal, plain lines otherwise (stderr)."""
    stream = stream or sys.stderr
    return RichProgress(stream) if stream.isatty() else PlainProgress(stream)
