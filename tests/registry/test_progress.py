"""Progress output: plain lines off a terminal, rich bars on one."""

from __future__ import annotations

import io

from ocibuild.registry import PlainProgress, RichProgress, default_progress

DIGEST = "sha256:" + "cd" * 32


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    progress = default_progress(out)
    assert isinstance(progress, PlainProgress)
    progress.blob_started(DIGEST, 2_000_000)
    progress.blob_progress(DIGEST, 1_000_000)
    progress.blob_finished(DIGEST, 2_000_000, "uploaded")
    progress.blob_finished("sha256:" + "ef" * 32, 10, "exists")
    progress.note("registry: pushed manifest")
    progress.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("cdcdcdcdcdcd: uploaded 2.0 MB in ")
    assert lines[1:] == ["efefefefefef: exists", "registry: pushed manifest"]


def test_rich_bars_on_a_terminal():
    out = FakeTty()
    progress = default_progress(out)
    assert isinstance(progress, RichProgress)
    progress.blob_started(DIGEST, 1000)
    progress.blob_progress(DIGEST, 500)
    progress.blob_finished(DIGEST, 1000, "uploaded")
    progress.close()
    assert "cdcdcdcdcdcd uploaded" in out.getvalue()
