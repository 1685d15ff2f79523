"""Shared fixtures for the whole suite.

Stores. ``shared_cache`` is one store kept across runs (~/.cache/ocibuild-test/store): downloads, layers, keys
and build memos are reused, so most tests start warm. A test whose point is a cache key, reproducibility, "a
rebuild changes only X" or the build memo must not pass on what an earlier run, or an earlier ocibuild, left in
it: such a test takes ``fresh_store``, a store of its own holding the shared downloads (.debs, wheels, Debian
indexes; content-addressed, hard-linked) and no layer, key or memo. A session fixture built for such tests seeds
its store the same way, once per session (``tests.helpers.seed_store``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from tests.helpers import seed_store

# Hypothesis keeps its example database and constants outside the checkout, so no file of this machine lands there.
set_hypothesis_home_dir(str(Path.home() / ".cache" / "ocibuild-test" / "hypothesis"))


@pytest.fixture(scope="session")
def shared_cache() -> Path:
    """A store shared by the whole session (downloads and layers are reused across tests)."""
    path = Path.home() / ".cache" / "ocibuild-test" / "store"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def fresh_store(shared_cache: Path, tmp_path: Path) -> Path:
    """A store of this test alone: the shared downloads, no layers, keys or memos (see the module's docstring)."""
    return seed_store(shared_cache, tmp_path / "fresh-store")
