"""A 2 GiB blob is streamed from disk: the pushing process grows by a few MB, not by the blob."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.registry.registry_helpers import remote_digest, start_registry

pytestmark = pytest.mark.integration


def test_two_gib_blob_with_bounded_memory(tmp_path):
    with start_registry(tmp_path / "reg") as reg:
        script = Path(__file__).with_name("big_push.py")
        run = subprocess.run(
            [sys.executable, str(script), reg.host, str(tmp_path / "big.bin"), "0"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        growth = int(run.stdout.strip().splitlines()[-1])
        assert growth < 50 << 20, f"peak RSS grew by {growth / 1e6:.0f} MB"
        assert remote_digest(f"{reg.host}/big/blob:v1")
