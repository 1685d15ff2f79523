"""What a build is doing, on stderr: live bars on a terminal, periodic plain lines in CI logs, or nothing.

Modes (``--progress``): ``tty`` (rich bars for downloads and layers, with bytes, rate and ETA), ``plain`` (step
lines, and every ``OCIBUILD_PROGRESS_INTERVAL`` seconds, default 10, one line naming what is still running, so a
CI job is never silent for long), ``quiet`` (warnings only) and ``auto`` (``tty`` on a terminal, else ``plain``).
Fetchers and layer writers report through ``active()``, the reporter the command installed with ``use()``; a
library caller that installs none gets one that prints nothing. stdout is never touched.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, TextIO

MODES = ("auto", "tty", "plain", "quiet")


class Task:
    """One piece of work with a byte count (``total`` when known)."""

    def __init__(self, reporter: Reporter, label: str, total: int | None) -> None:
        self.reporter, self.label, self.total = reporter, label, total
        self.done = 0
        self.started = time.monotonic()
        self._bar: Any = None

    def advance(self, count: int) -> None:
        self.done += count
        if self._bar is not None:
            self.reporter._bars.update(self._bar, advance=count)

    def describe(self) -> str:
        """``label 12.3/45.6 MB (7.8 MB/s)`` for the plain heartbeat."""
        rate = self.done / max(time.monotonic() - self.started, 1e-3)
        size = f"{_mb(self.done)}/{_mb(self.total)} MB" if self.total else f"{_mb(self.done)} MB"
        return f"{self.label} {size} ({_mb(rate)} MB/s)"


def _mb(count: float | None) -> str:
    return f"{(count or 0) / 1e6:.1f}"


class Reporter:
    """Writes steps, warnings and live progress to ``stream`` (stderr) in one of ``MODES``."""

    def __init__(self, quiet: bool = False, stream: TextIO | None = None, mode: str = "auto") -> None:
        self.stream = stream or sys.stderr
        if quiet:
            mode = "quiet"
        if mode == "auto":
            mode = "tty" if self.stream.isatty() else "plain"
        self.mode = mode
        self._start = time.monotonic()
        self._tasks: dict[int, Task] = {}
        self._lock = threading.Lock()
        self._console: Any = None
        self._bars: Any = None
        self._heartbeat: threading.Thread | None = None
        self._stop = threading.Event()
        if mode == "tty":
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._console = Console(file=self.stream, highlight=False)
            columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
            self._bars = Progress(*columns, TimeRemainingColumn(), console=self._console, transient=True)

    @property
    def quiet(self) -> bool:
        return self.mode == "quiet"

    def step(self, message: str) -> None:
        if self.quiet:
            return
        elapsed = time.monotonic() - self._start
        if self._console is not None:
            self._console.print(f"[dim]{elapsed:6.2f}s[/dim] {message}")
        else:
            print(f"{elapsed:6.2f}s {message}", file=self.stream, flush=True)

    def warn(self, message: str) -> None:
        if self._console is not None:
            self._console.print(f"[yellow]warning:[/yellow] {message}")
        else:
            print(f"warning: {message}", file=self.stream, flush=True)

    @contextlib.contextmanager
    def task(self, label: str, total: int | None = None) -> Iterator[Task]:
        """Show ``label`` while the block runs; call ``advance`` on what it yields as bytes go by."""
        task = Task(self, label, total)
        with self._lock:
            self._tasks[id(task)] = task
            if self._bars is not None:
                if not self._bars.live.is_started:
                    self._bars.start()
                task._bar = self._bars.add_task(label, total=total)
            elif self.mode == "plain" and self._heartbeat is None:
                self._heartbeat = threading.Thread(target=self._beat, name="progress", daemon=True)
                self._heartbeat.start()
        try:
            yield task
        finally:
            with self._lock:
                del self._tasks[id(task)]
                if task._bar is not None:
                    self._bars.remove_task(task._bar)
                    if not self._tasks:
                        self._bars.stop()

    def _beat(self) -> None:
        interval = float(os.environ.get("OCIBUILD_PROGRESS_INTERVAL", "10"))
        while not self._stop.wait(interval):
            with self._lock:
                running = [t.describe() for t in self._tasks.values()]
            if running:
                self.step("still working: " + "; ".join(running))

    def close(self) -> None:
        self._stop.set()
        if self._bars is not None and self._bars.live.is_started:
            self._bars.stop()


class NullReporter(Reporter):
    """A reporter that prints nothing (library use)."""

    def __init__(self) -> None:
        super().__init__(quiet=True)

    def warn(self, message: str) -> None:
        return


_active: Reporter = NullReporter()


def active() -> Reporter:
    """The reporter the running command installed (one that prints nothing otherwise)."""
    return _active


@contextlib.contextmanager
def use(reporter: Reporter) -> Iterator[Reporter]:
    """Install ``reporter`` for fetchers and layer writers while the block runs."""
    global _active
    previous, _active = _active, reporter
    try:
        yield reporter
    finally:
        _active = previous
        reporter.close()
