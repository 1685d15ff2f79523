"""Same inputs, same digest: two checkouts in different places and environments, then offline without a network.

Issue 10: the digest depends only on cog.yaml, the project files, the lock and SOURCE_DATE_EPOCH; never on the
checkout path, mtimes, umask, TZ/LANG, hash seed, CPU count or cache directory. ``--offline`` builds with no
network at all (the third build runs in a fresh network namespace that holds only ``lo``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import seed_store
from tests.reproducible.conftest import (
    EXAMPLES,
    EXTRA_ARGS,
    base_env,
    copy_project,
    digest_of,
    example_names,
    ocibuild,
)

LOCK = "ocibuild.lock"


def _restamp(root: Path, mtime: int, file_mode: int, dir_mode: int) -> None:
    """What another checkout looks like: other mtimes, and modes from another umask (exec bits kept)."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                continue
            path.chmod(file_mode | (0o100 if path.stat().st_mode & 0o111 else 0))
            os.utime(path, (mtime, mtime))
        for name in dirnames:
            (Path(dirpath) / name).chmod(dir_mode)
            os.utime(Path(dirpath) / name, (mtime, mtime))
    os.utime(root, (mtime, mtime))


def _one_cpu() -> None:
    os.umask(0o077)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


@pytest.mark.integration
@pytest.mark.parametrize("name", example_names())
def test_two_checkouts_then_an_offline_build_without_network_give_one_digest(name: str, tmp_path: Path):
    src = EXAMPLES / name
    assert (src / "cog.yaml").is_file(), f"examples/{name}/cog.yaml is missing"
    extra = EXTRA_ARGS.get(name, [])

    one = copy_project(src, tmp_path / "a" / name)
    os.utime(one / "cog.yaml", (2_000_000_000, 2_000_000_000))
    first = ocibuild(
        str(one),
        "--cache-dir",
        str(tmp_path / "cache-a"),
        *extra,
        env=base_env(TZ="UTC", LANG="C.UTF-8", LC_ALL="C.UTF-8", PYTHONHASHSEED="1"),
        umask=0o022,
    )
    digest = digest_of(first)

    # Another checkout: deeper path with a space, other mtimes and modes, run from inside it with a relative
    # path, another TZ/locale/hash seed, umask 077, one CPU (compressor thread count 1) and an empty cache.
    two = copy_project(src, tmp_path / "b" / "deeper checkout" / "proj")
    _restamp(two, 1_234_567_890, 0o600, 0o700)
    env_two = base_env(TZ="Asia/Kathmandu", LANG="tr_TR.UTF-8", LC_ALL="tr_TR.UTF-8", PYTHONHASHSEED="2")
    second = subprocess.run(
        [sys.executable, "-m", "ocibuild", ".", "--cache-dir", str(tmp_path / "cache-b"), *extra],
        capture_output=True,
        text=True,
        env=env_two,
        cwd=two,
        preexec_fn=_one_cpu,
        timeout=900,
    )
    assert digest_of(second) == digest, f"{name}: second checkout gave another digest\n{second.stderr}"
    if (one / LOCK).exists():
        assert json.loads((one / LOCK).read_text()) == json.loads((two / LOCK).read_text())

    # Offline, in a network namespace with only `lo`, from a third checkout and a store that holds the first
    # build's downloads (no layers, no keys): every layer is rebuilt from the lock and the store alone.
    three = copy_project(src, tmp_path / "c" / "third")
    (three / LOCK).write_bytes((one / LOCK).read_bytes())
    store_c = seed_store(tmp_path / "cache-a", tmp_path / "cache-c")
    third = ocibuild(str(three), "--cache-dir", str(store_c), "--offline", *extra, no_network=True)
    assert "network interfaces: ['lo']" in third.stderr, third.stderr
    assert digest_of(third) == digest, f"{name}: offline build gave another digest\n{third.stderr}"
    assert any((store_c / "blobs" / "sha256").iterdir()), "the offline build wrote its layers to the store"
