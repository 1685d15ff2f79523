"""Progress people can see: live bars on a terminal, periodic lines in CI logs, silence under -q."""

from __future__ import annotations

import io
import os
import select
import shutil
import threading
import time
from pathlib import Path

import pytest

from ocibuild.progress import Reporter
from tests.cli.test_build_cli import ocibuild
from tests.helpers import REPO


def _work(reporter: Reporter, seconds: float) -> None:
    with reporter.task("torch-2.9.1.whl", total=10_000_000) as task:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            task.advance(100_000)
            time.sleep(0.02)
    reporter.close()


def test_a_terminal_gets_live_bars_with_bytes_and_rate() -> None:
    master, slave = os.openpty()
    chunks: list[bytes] = []

    def drain() -> None:  # read while writing: a full pty buffer would block the writer
        while True:
            try:
                if select.select([master], [], [], 2)[0]:
                    chunk = os.read(master, 65536)
                    if chunk:
                        chunks.append(chunk)
                        continue
            except OSError:  # EIO once the terminal side is closed and drained
                pass
            return

    reader = threading.Thread(target=drain)
    reader.start()
    with os.fdopen(slave, "w") as stream:
        reporter = Reporter(stream=stream)
        assert reporter.mode == "tty"
        _work(reporter, 0.6)
    reader.join(10)
    os.close(master)
    text = b"".join(chunks).decode(errors="replace")
    assert "torch-2.9.1.whl" in text and "MB/s" in text and "\x1b[" in text


def test_ci_logs_get_a_plain_still_working_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCIBUILD_PROGRESS_INTERVAL", "0.1")
    stream = io.StringIO()
    reporter = Reporter(stream=stream)
    assert reporter.mode == "plain"
    _work(reporter, 0.45)
    lines = [line for line in stream.getvalue().splitlines() if "still working: torch-2.9.1.whl" in line]
    assert len(lines) >= 2 and "MB/s" in lines[-1] and "\x1b[" not in stream.getvalue()


def test_quiet_prints_nothing_but_warnings() -> None:
    stream = io.StringIO()
    reporter = Reporter(stream=stream, mode="quiet")
    reporter.step("hidden")
    _work(reporter, 0.1)
    reporter.warn("shown")
    assert stream.getvalue() == "warning: shown\n"


@pytest.mark.integration
def test_a_cold_build_in_ci_is_never_silent_for_long(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(REPO / "examples" / "image-pillow", project)
    result = ocibuild(
        str(project), "--cache-dir", str(tmp_path / "cache"), "--progress", "plain",
        env={"OCIBUILD_PROGRESS_INTERVAL": "0.2"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "still working: " in result.stderr
    quiet = ocibuild(str(project), "--cache-dir", str(tmp_path / "cache2"), "-q")
    assert quiet.returncode == 0 and quiet.stderr == ""
