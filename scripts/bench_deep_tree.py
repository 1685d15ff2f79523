#!/usr/bin/env python3
"""Benchmark: a chain of directories N deep through the build.run path (diff, layer, unpack, removal).

Same run, two depths: the ratio of the times at 4x the depth shows how the work grows with depth. Paths are
walked by the kernel once per call, so a call per level is already quadratic in kernel work; the Python side
must add no more (before: resolving every member's parent component by component, and joining every prefix
of every path, made unpacking cubic: a 1,200-deep layer took minutes). Goal: ratio <= 16x (quadratic).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from ocibuild.oci import Compression, Store, write_layer
from ocibuild.oci.tree import remove_tree
from ocibuild.run.diff import diff_rootfs
from ocibuild.run.extract import rootfs_for


def make_chain(top: Path, depth: int) -> None:
    top.mkdir(parents=True)
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(fd)


def seconds(depth: int, scratch: Path) -> dict[str, float]:
    """Times of each step for a chain ``depth`` deep."""
    before, after = scratch / "before", scratch / "after"
    before.mkdir(parents=True)
    make_chain(after / "deep", depth)
    store = Store(scratch / "store")
    times = {}
    start = time.perf_counter()
    entries = diff_rootfs(before, after)
    times["diff"] = time.perf_counter() - start
    start = time.perf_counter()
    layer = write_layer(entries, store, Compression.GZIP)
    times["layer"] = time.perf_counter() - start
    start = time.perf_counter()
    rootfs_for([layer], store)
    times["unpack"] = time.perf_counter() - start
    start = time.perf_counter()
    remove_tree(scratch)
    times["remove"] = time.perf_counter() - start
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--depth", type=int, default=1200)
    depth = parser.parse_args().depth
    small, large = depth // 4, depth
    with tempfile.TemporaryDirectory(prefix="bench-deep-") as tmp:
        low = seconds(small, Path(tmp) / "small")
        high = seconds(large, Path(tmp) / "large")
    print(f"{'step':8} {small:>6} deep {large:>6} deep  ratio")
    for step in low:
        print(f"{step:8} {low[step]:9.3f} s {high[step]:9.3f} s  {high[step] / max(low[step], 1e-9):5.1f}x")
    total_low, total_high = sum(low.values()), sum(high.values())
    print(f"{'total':8} {total_low:9.3f} s {total_high:9.3f} s  {total_high / total_low:5.1f}x (goal <= 16x)")


if __name__ == "__main__":
    main()
