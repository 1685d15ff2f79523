"""Fixtures for code-layer tests: a small Cog project with files old enough to be fingerprinted."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ocibuild.oci import Store


def age(root: Path, seconds: int = 3600) -> None:
    """Backdate every mtime under ``root`` (fresh files are 'racy' and always re-hashed)."""
    past = time.time() - seconds
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.utime(Path(dirpath) / name, (past, past), follow_symlinks=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "lib").mkdir(parents=True)
    (root / "predict.py").write_text("from cog import BasePredictor\n")
    (root / "cog.yaml").write_text("predict: predict.py:Predictor\n")
    (root / "lib" / "util.py").write_text("X = 1\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    for junk in (
        ".git/HEAD",
        ".cog/tmp/x",
        "__pycache__/a.pyc",
        "lib/__pycache__/b.pyc",
        ".venv/bin/python",
        ".ocibuild/out",
    ):
        (root / junk).parent.mkdir(parents=True, exist_ok=True)
        (root / junk).write_text("junk")
    age(root)
    return root


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")
