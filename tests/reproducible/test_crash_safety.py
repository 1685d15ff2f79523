"""SIGKILL at random points of a build: the store stays consistent and the next build gives the same digest.

Each of the 20 kills (delays from ``random.Random(1234)``, spread over the measured length of such a build) hits
a build on a cold-ish store, a fresh cache seeded from a warm one: every other time it holds only the downloaded
.debs, so every layer (base, runner, code) is written again; otherwise the base layer too, so that the short
runner and code writes and the layout are hit densely. The next build in that cache must succeed with the
digest of an uninterrupted build, the output layout must verify, and the store must hold no partial entry:
every blob matches its name, every key record points to a matching blob, and no work file is left in ``tmp/``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ocibuild.oci import read_layout
from tests.helpers import seed_store
from tests.reproducible.conftest import base_env, check_store, copy_project, digest_of, ocibuild

KILLS = 20
SEED = 1234


def _build_args(project: Path, store: Path) -> list[str]:
    return [str(project), "--cache-dir", str(store), "--offline", "-q"]


def _killed_build(project: Path, store: Path, delay: float) -> int | None:
    """Start a build and SIGKILL its whole process group after ``delay`` s; None when it finished first."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ocibuild", *_build_args(project, store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=base_env(),
        start_new_session=True,
    )
    try:
        proc.wait(timeout=delay)
        return None
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()


def _seed(warm_store: Path, dest: Path, keep_digest: str | None) -> Path:
    """A store with the downloaded .debs of ``warm_store`` and, when given, the layer ``keep_digest`` (key + blob)."""
    store = seed_store(warm_store, dest)
    if keep_digest is not None:
        hex_ = keep_digest.split(":", 1)[1]
        (store / "blobs" / "sha256").mkdir(parents=True)
        os.link(warm_store / "blobs" / "sha256" / hex_, store / "blobs" / "sha256" / hex_)
        for key in (warm_store / "keys").rglob("*.json"):
            if json.loads(key.read_text()).get("digest") == keep_digest:
                (store / "keys" / key.parent.name).mkdir(parents=True, exist_ok=True)
                os.link(key, store / "keys" / key.parent.name / key.name)
    return store


@pytest.mark.integration
def test_sigkill_at_random_points_leaves_a_consistent_store(warm_hello, tmp_path: Path):
    warm_store, warm_project, _ = warm_hello
    project = copy_project(warm_project, tmp_path / "project")
    base_digest = read_layout(warm_project / ".ocibuild" / "image").layers[0].digest
    scenarios = [None, base_digest]  # all layers cold; base layer kept

    durations, references = [], set()
    for n, keep in enumerate(scenarios):
        start = time.monotonic()
        references.add(digest_of(ocibuild(*_build_args(project, _seed(warm_store, tmp_path / f"ref-{n}", keep)))))
        durations.append(time.monotonic() - start)
    assert len(references) == 1, references
    expected = references.pop()  # of the runner sources as they are now (warm_hello's may be older)

    rng = random.Random(SEED)
    fractions = [rng.uniform(i / KILLS, (i + 1) / KILLS) for i in range(KILLS)]
    rng.shuffle(fractions)
    killed = 0
    for i, fraction in enumerate(fractions):
        delay = fraction * durations[i % 2]
        store = _seed(warm_store, tmp_path / f"store-{i}", scenarios[i % 2])
        if _killed_build(project, store, delay) is not None:
            killed += 1
        check_store(store)
        after = ocibuild(*_build_args(project, store))
        assert digest_of(after) == expected, f"kill {i} at {delay:.2f}s: the next build gave another digest"
        check_store(store)
        assert not list((store / "tmp").iterdir()), f"kill {i} at {delay:.2f}s: work files left in tmp/"
        assert read_layout(project / ".ocibuild" / "image").digest == expected
    assert killed >= KILLS // 4, f"only {killed} of {KILLS} builds were killed before they finished ({durations})"


def test_a_new_store_removes_work_files_of_dead_builds_but_not_of_live_ones(tmp_path: Path):
    from ocibuild.oci import Store

    live = Store(tmp_path)
    with live.temp_path(".layer") as work:
        work.write_bytes(b"half a layer")
        (tmp_path / "tmp" / "ocibuild-py-x").mkdir()
        Store(tmp_path)  # another build starts while `live` works: nothing may go
        assert work.exists() and (tmp_path / "tmp" / "ocibuild-py-x").is_dir()
        leftover = tmp_path / "tmp" / "tmpdead.layer"
        leftover.write_bytes(b"left by a killed build")
    del live
    Store(tmp_path)  # no other live user now: what killed builds left goes
    assert not list((tmp_path / "tmp").iterdir())
