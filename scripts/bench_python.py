"""Benchmark: the torch CPU project's Python layers (cold and warm) against ``uv pip install --target`` of the
same lock plus ``tar | gzip`` of the result, measured in the same run.

    .venv/bin/python scripts/bench_python.py [--requirement 'torch==2.13.0+cpu'] [--find-links /opt/wheels]

Cold: an empty store (every wheel fetched, verified, unpacked, tarred and compressed). Warm: the same store
again (lock unchanged, layers cached). Baseline: an empty uv cache, ``uv pip install --no-deps --target`` of the
pinned lock, then ``tar -C DIR -cf - . | gzip``. Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ocibuild.oci.store import Store
from ocibuild.sources.python import PythonTarget, lock_python, python_layers, read_requirements
from ocibuild.sources.python.uv import uv_binary


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def baseline(section: dict, target: PythonTarget, find_links: list[str], work: Path) -> dict[str, float]:
    """uv pip install --target of the locked pins (cold uv cache), then tar | gzip of the tree."""
    pins = work / "pinned.txt"
    pins.write_text("".join(f"{d['name']}=={d['version']}\n" for d in section["distributions"]))
    tree, out = work / "site", work / "site.tar.gz"
    env = dict(os.environ, UV_CACHE_DIR=str(work / "uv-cache"), UV_PYTHON_DOWNLOADS="never")
    args = [uv_binary(), "pip", "install", "--no-config", "--quiet", "--no-deps", "--target", str(tree)]
    args += ["--python-platform", target.uv_platform, "--python-version", target.python_version]
    for link in find_links:
        args += ["--find-links", link]
    install, _ = _timed(lambda: subprocess.run([*args, "-r", str(pins)], env=env, check=True))
    pipeline = f"tar -C {tree} -cf - . | gzip > {out}"
    archive, _ = _timed(lambda: subprocess.run(pipeline, shell=True, check=True))
    return {"install_s": install, "tar_gzip_s": archive, "total_s": install + archive, "bytes": out.stat().st_size}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requirement", default="torch==2.13.0+cpu")
    parser.add_argument("--find-links", action="append", default=None)
    parser.add_argument("--python", default="3.11")
    parser.add_argument("--glibc", default="2.36")
    opts = parser.parse_args()
    find_links = opts.find_links if opts.find_links is not None else ["/opt/wheels"]
    target = PythonTarget.for_python(opts.python, opts.glibc)
    with tempfile.TemporaryDirectory(prefix="bench-python-", dir=Path.home() / ".cache") as tmp:
        work = Path(tmp)
        (work / "project").mkdir()
        (work / "project" / "requirements.txt").write_text(opts.requirement + "\n")
        reqs = read_requirements(work / "project", "requirements.txt")
        lock_s, section = _timed(lambda: lock_python(reqs, target, find_links=find_links))
        store = Store(work / "store")
        cold_s, layers = _timed(lambda: python_layers(section, target, store, 0))
        warm_s, _ = _timed(lambda: python_layers(section, target, store, 0))
        base = baseline(section, target, find_links, work)
    result = {
        "requirement": opts.requirement,
        "target": target.describe(),
        "distributions": len(section["distributions"]),
        "lock_s": round(lock_s, 3),
        "cold_s": round(cold_s, 3),
        "warm_s": round(warm_s, 4),
        "layers": [{"name": n, "bytes": layer.size, "tar_bytes": layer.uncompressed_size} for n, layer in layers],
        "baseline": {k: round(v, 3) for k, v in base.items()},
        "cold_vs_baseline": round(cold_s / base["total_s"], 3),
        "goals": {"warm_under_1s": warm_s < 1.0, "cold_at_most_1.2x": cold_s <= 1.2 * base["total_s"]},
    }
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
