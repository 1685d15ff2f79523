#!/usr/bin/env python3
"""Benchmark: materialise one layer from a large real tree (torch, CPU wheel) against shell baselines.

Same run, same tree, warm page cache. Reports MB/s of tar input and ratios:
- ours: ocibuild.oci.write_layer (tar + sha256(tar) + ISA-L gzip-1 + sha256(blob), one pass);
- GNU `tar --sort=name ... | gzip -n | sha256sum` and the same with `pigz -1 -n`;
- the floor: sha256 + the chosen compressor + sha256 over the tar already in memory (no file reads, no headers).
Goal: >= 3x faster than GNU tar+gzip, within 1.3x of the floor.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_floor import floor_seconds

from ocibuild.oci import Compression, Store, entries_from_tree, write_layer
from ocibuild.oci.tarwriter import write_tar

WHEELS = Path("/opt/wheels")
TREE = Path(tempfile.gettempdir()) / "ocibuild-bench" / "torch-tree"


def ensure_tree() -> Path:
    if (TREE / "torch").is_dir():
        return TREE
    uv = subprocess.run(
        [sys.executable, "-c", "import uv; print(uv.find_uv_bin())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(TREE),
            "--find-links",
            str(WHEELS),
            "--python-version",
            "3.11",
            "--python-platform",
            "x86_64-manylinux_2_28",
            "--link-mode",
            "copy",
            "torch==2.13.0+cpu",
        ],
        check=True,
    )
    return TREE


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def best_of(n: int, fn) -> float:
    return min(timed(fn) for _ in range(n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    tree = ensure_tree()
    tar = io.BytesIO()
    write_tar(entries_from_tree(tree), tar, 0)
    tar_bytes = tar.getvalue()
    mb = len(tar_bytes) / 1e6
    subprocess.run(["tar", "-cf", "/dev/null", "-C", str(tree), "."], check=True)  # warm the page cache

    with tempfile.TemporaryDirectory() as tmp:

        def ours() -> None:
            store = Store(Path(tmp) / f"store-{time.monotonic_ns()}")
            write_layer(entries_from_tree(tree), store, Compression.GZIP, 0)

        def shell(compressor: str) -> None:
            subprocess.run(
                f"tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - -C {tree} . "
                f"| tee >(sha256sum >/dev/null) | {compressor} | sha256sum > /dev/null",
                shell=True,
                check=True,
                executable="/bin/bash",
            )

        results = {
            "ocibuild write_layer (isal gzip-1)": best_of(args.runs, ours),
            "floor: sha256+isal gzip-1+sha256, in memory": min(floor_seconds(tar_bytes) for _ in range(args.runs)),
            "GNU tar | gzip -n | sha256sum": best_of(1, lambda: shell("gzip -n")),
            "GNU tar | pigz -1 -n | sha256sum": best_of(args.runs, lambda: shell("pigz -1 -n")),
        }
    print(f"tree: {tree} ({mb:.0f} MB of tar)")
    for name, seconds in results.items():
        print(f"{name:48s} {seconds:7.2f} s  {mb / seconds:7.0f} MB/s")
    ours_s = results["ocibuild write_layer (isal gzip-1)"]
    print(f"speed-up vs GNU tar+gzip: {results['GNU tar | gzip -n | sha256sum'] / ours_s:.1f}x (goal >= 3x)")
    print(f"speed-up vs GNU tar+pigz -1: {results['GNU tar | pigz -1 -n | sha256sum'] / ours_s:.1f}x")
    print(f"ours / floor: {ours_s / results['floor: sha256+isal gzip-1+sha256, in memory']:.2f}x (goal <= 1.3x)")


if __name__ == "__main__":
    main()
