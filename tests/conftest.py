"""Shared fixtures for the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

# Hypothesis keeps its example database and constants outside the checkout, so no file of this machine lands there.
set_hypothesis_home_dir(str(Path.home() / ".cache" / "ocibuild-test" / "hypothesis"))


@pytest.fixture(scope="session")
def shared_cache() -> Path:
    """A store shared by the whole session (downloads and layers are reused across tests)."""
    path = Path.home() / ".cache" / "ocibuild-test" / "store"
    path.mkdir(parents=True, exist_ok=True)
    return path
