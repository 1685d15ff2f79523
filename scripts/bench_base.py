"""Benchmark: a base image layer, cold (empty store) and warm, against ``mmdebstrap --variant=extract``.

Usage: .venv/bin/python scripts/bench_base.py [--python 3.11] [--runs 1]
Cold = an empty store (downloads, verification, unpacking, fixups and the gzip layer); warm = the same store
again. mmdebstrap gets the same package list (it resolves and downloads itself, to a directory, uncompressed).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ocibuild.oci.store import Store
from ocibuild.sources import debian


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _mmdebstrap(defn: debian.BaseDefinition, work: Path) -> float:
    target = work / "mmdebstrap-root"
    shutil.rmtree(target, ignore_errors=True)
    mirrors = [f"deb {a.url} {a.suite} {' '.join(a.components)}" for a in defn.archives]
    cmd = [
        "mmdebstrap",
        "--quiet",
        "--variant=extract",
        f"--include={','.join(defn.packages)}",
        defn.archives[0].suite,
        str(target),
        *mirrors,
    ]
    elapsed = _timed(lambda: subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL))
    shutil.rmtree(target, ignore_errors=True)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="3.11")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    defn = debian.load_base_definition(args.python)
    lock = debian.load_lock(defn, "linux/amd64")
    have_mmdebstrap = shutil.which("mmdebstrap") is not None
    cold, warm, mm = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-base-") as tmp:
        work = Path(tmp)
        for run in range(args.runs):
            store = Store(work / f"store-{run}")
            cold.append(_timed(lambda store=store: debian.base_layers(lock, store, 0)))
            warm.append(_timed(lambda store=store: debian.base_layers(lock, store, 0)))
            if have_mmdebstrap:
                mm.append(_mmdebstrap(defn, work))
    size = sum(p.size for p in lock.packages) / 1e6
    print(f"{defn.name}: {len(lock.packages)} packages, {size:.1f} MB of .debs, {args.runs} run(s), median seconds")
    print(f"  ocibuild cold (empty store):  {statistics.median(cold):6.2f}")
    print(f"  ocibuild warm (store hit):    {statistics.median(warm):6.3f}")
    if mm:
        ratio = statistics.median(cold) / statistics.median(mm)
        print(f"  mmdebstrap --variant=extract: {statistics.median(mm):6.2f}")
        print(f"  cold ratio ocibuild/mmdebstrap: {ratio:.2f}x")
    else:
        print("  mmdebstrap not installed: no comparison (apt-get install mmdebstrap)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
