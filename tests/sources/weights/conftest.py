"""Fixtures for weights tests: projects with weight files old enough to be fingerprinted."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ocibuild.oci import Store


def age(root: Path, seconds: int = 3600) -> None:
    """Backdate ``root`` and everything under it (fresh files are 'racy' and always re-hashed)."""
    past = time.time() - seconds
    paths = (
        [root] + [Path(d) / n for d, dirs, files in os.walk(root) for n in dirs + files] if root.is_dir() else [root]
    )
    for path in paths:
        os.utime(path, (past, past), follow_symlinks=False)


def make_project(root: Path, files: dict[str, bytes]) -> Path:
    """A Cog project at ``root`` with ``predict.py``, ``cog.yaml`` and ``files``, all backdated."""
    (root).mkdir(parents=True, exist_ok=True)
    (root / "predict.py").write_text("from cog import BasePredictor\n")
    (root / "cog.yaml").write_text("predict: predict.py:Predictor\n")
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    age(root)
    return root


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")
