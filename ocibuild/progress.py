"""Progress and log lines on stderr: a live status on a terminal, plain lines otherwise (CI logs)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Reporter:
    """Writes build steps to stderr; ``quiet`` keeps only warnings. stdout is never touched."""

    def __init__(self, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self._start = time.monotonic()
        self._console = None
        if not quiet and self.stream.isatty():
            from rich.console import Console

            self._console = Console(file=self.stream, highlight=False)

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


class NullReporter(Reporter):
    """A reporter that prints nothing (library use)."""

    def __init__(self) -> None:
        super().__init__(quiet=True)

    def warn(self, message: str) -> None:
        return
