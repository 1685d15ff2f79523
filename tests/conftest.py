"""Shared fixtures for the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_cache() -> Path:
    """A store shared by the whole session (downloads and layers are reused across tests)."""
    path = Path.home() / ".cache" / "ocibuild-test" / "store"
    path.mkdir(parents=True, exist_ok=True)
    return path
