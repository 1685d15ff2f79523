#!/usr/bin/env python3
"""Benchmark: whole builds of a torch CPU project against the shell script an expert would write without us.

Project (temporary): cog.yaml python 3.11 + requirements ``torch==2.13.0`` + a trivial predict.py, built with
``--find-links /opt/wheels``. Measured in one run, on the same machine:
- ours, cold: ``ocibuild build`` with an empty --cache-dir (downloads the .debs and dependency wheels), and
  cold with a cache holding only those downloads (no layers): the layer work alone;
- ours, no-op rebuild and code-change rebuild (one line of predict.py), CLI wall time;
- baseline: ``uv pip install --target`` (uv's own cache pre-warmed, as for us), GNU ``tar --sort=name | tee
  (sha256sum) | pigz -n | sha256sum`` of the tree, the same for the Debian base rootfs (the same .debs,
  ``dpkg-deb -x`` one after the other) and the code; with pigz's default level (6) and with ``pigz -1``;
- the single-pass floor as in scripts/bench_layers.py: sha256 + ISA-L gzip-1 (both cores) + sha256 over the
  layer tars already in memory (no file reads, no headers), and the end-to-end layer throughput of the cold
  build (uncompressed layer bytes / wall time, downloads excluded) against it.
Goals: cold <= 0.5x the baseline; no-op < 0.3 s and code-change < 0.5 s (beside the interpreter's bare
start-up, measured in the same run); end-to-end >= 0.7x the floor.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_floor import floor_seconds

from ocibuild.oci import Compression, Store, entries_from_tree, write_layer
from ocibuild.oci.tarwriter import write_tar

WHEELS = "/opt/wheels"
REPO = Path(__file__).resolve().parent.parent
COG_YAML = 'build:\n  python_version: "3.11"\n  python_requirements: requirements.txt\nrun: "predict.py:Predictor"\n'
PREDICT = (
    "from cog import BasePredictor\n\n\n"
    "class Predictor(BasePredictor):\n"
    "    def predict(self, n: int = 1) -> int:\n"
    "        return n + 1\n"
)
TAR = "tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf -"


def uv_bin() -> str:
    import uv

    return uv.find_uv_bin()


def ocibuild(*args: str) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "ocibuild", *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"ocibuild {' '.join(args)} failed:\n{proc.stderr}")
    return seconds, proc.stdout.strip().rsplit("@", 1)[-1]


def timed_command(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - start


def sh(script: str) -> float:
    start = time.perf_counter()
    subprocess.run(script, shell=True, check=True, executable="/bin/bash", stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def layer_script(tree: Path, pigz: str, tar_options: str = "") -> str:
    """One layer as a script would make it: diff_id of the tar, compressed blob and its digest."""
    return (
        f"{TAR} {tar_options} -C {tree} . | tee >(sha256sum > /dev/null) | {pigz} | tee >(sha256sum > /dev/null)"
        " > /dev/null"
    )


def base_debs(store: Path) -> list[Path]:
    lock = json.loads((REPO / "base-images" / "bookworm-py3.11.lock.json").read_text())
    packages = lock["platforms"]["linux/amd64"]["packages"]
    return [store / "debs" / f"{p['sha256']}.deb" for p in packages]


def baseline(work: Path, project: Path, debs: list[Path], pigz: str) -> dict[str, float]:
    """``uv pip install --target`` + tar | pigz | sha256sum for Python, the Debian rootfs and the code."""
    target, rootfs = work / "target", work / "rootfs"
    shutil.rmtree(target, ignore_errors=True)
    shutil.rmtree(rootfs, ignore_errors=True)
    times = {}
    times["uv pip install --target"] = sh(
        f"{uv_bin()} pip install --quiet --target {target} --find-links {WHEELS} --python-version 3.11 "
        f"--python-platform x86_64-manylinux_2_28 torch==2.13.0"
    )
    times["tar|pigz|sha256 python"] = sh(layer_script(target, pigz))
    rootfs.mkdir()
    times["dpkg-deb -x (base)"] = sh("; ".join(f"dpkg-deb -x {deb} {rootfs}" for deb in debs))
    times["tar|pigz|sha256 base"] = sh(layer_script(rootfs, pigz))
    times["tar|pigz|sha256 code"] = sh(layer_script(project, pigz, "--exclude=./.ocibuild --exclude=./ocibuild.lock"))
    return times


def wheel_layer_seconds(cache: Path, work: Path) -> tuple[float, int]:
    """Our installer streaming the torch wheel (from the store) straight into a layer: no unpacked tree."""
    import zipfile

    from ocibuild.cog.resolve import python_target
    from ocibuild.oci import Platform
    from ocibuild.sources import debian
    from ocibuild.sources.python.wheel import wheel_entries

    wheel = next((cache / "wheels").glob("*/torch-*.whl"))
    target = python_target(
        debian.load_lock(debian.load_base_definition("3.11"), "linux/amd64"), Platform("linux", "amd64")
    )
    store = Store(Path(tempfile.mkdtemp(dir=work)))
    start = time.perf_counter()
    with zipfile.ZipFile(wheel) as zf:
        layer = write_layer(wheel_entries(zf, wheel, target), store, Compression.GZIP, 0)
    return time.perf_counter() - start, layer.uncompressed_size


def stored_layer_bytes(store: Path) -> int:
    """Uncompressed bytes of every layer recorded in ``store``."""
    return sum(json.loads(p.read_text()).get("uncompressed_size", 0) for p in (store / "keys").rglob("*.json"))


def seed_downloads(src: Path, dest: Path) -> None:
    dest.mkdir(parents=True)
    for part in ("debs", "wheels"):
        if (src / part).is_dir():
            shutil.copytree(src / part, dest / part, copy_function=os.link)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of the quick measurements (best is kept)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ocibuild-bench-build-"))
    try:
        run(work, args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, runs: int) -> None:
    project = work / "project"
    project.mkdir()
    (project / "cog.yaml").write_text(COG_YAML)
    (project / "requirements.txt").write_text("torch==2.13.0\n")
    (project / "predict.py").write_text(PREDICT)

    # Untimed: a first build writes ocibuild.lock (uv resolves once); a baseline install warms uv's own cache.
    ocibuild(str(project), "--find-links", WHEELS, "--cache-dir", str(work / "warmup-cache"), "-q")
    shutil.rmtree(work / "warmup-cache")
    baseline(work, project, [], "cat")

    # Ours, cold: an empty cache dir (downloads .debs and dependency wheels; torch comes from /opt/wheels).
    cold_empty, digest = ocibuild(str(project), "--find-links", WHEELS, "--cache-dir", str(work / "cache-a"), "-q")
    cache = work / "cache-a"
    # Ours, cold layers only: a cache holding just those downloads.
    seed_downloads(cache, work / "cache-b")
    cold_layers, digest_b = ocibuild(str(project), "--find-links", WHEELS, "--cache-dir", str(work / "cache-b"), "-q")
    assert digest_b == digest, (digest, digest_b)
    layer_bytes = stored_layer_bytes(work / "cache-b")

    noop = min(ocibuild(str(project), "--find-links", WHEELS, "--cache-dir", str(cache), "-q")[0] for _ in range(runs))
    code_change = []
    for i in range(runs):
        with open(project / "predict.py", "a") as f:
            f.write(f"# change {i}\n")
        code_change.append(ocibuild(str(project), "--find-links", WHEELS, "--cache-dir", str(cache), "-q")[0])

    bare = min(timed_command([sys.executable, "-c", "pass"]) for _ in range(runs))
    debs = base_debs(cache)
    base6 = baseline(work, project, debs, "pigz -n")
    base1 = baseline(work, project, debs, "pigz -1 -n")

    # The floor, over the same layer contents as tars in memory (Python tree + Debian rootfs).
    tars = []
    for tree in (work / "target", work / "rootfs"):
        buf = io.BytesIO()
        write_tar(entries_from_tree(tree), buf, 0)
        tars.append(buf.getvalue())
    floor = min(sum(floor_seconds(t) for t in tars) for _ in range(runs))
    floor_mb = sum(len(t) for t in tars) / 1e6
    # write_layer alone over the installed torch tree (reads files, builds headers), as scripts/bench_layers.py.
    write_s = []
    for i in range(runs):
        start = time.perf_counter()
        write_layer(entries_from_tree(work / "target"), Store(work / f"wl-{i}"), Compression.GZIP, 0)
        write_s.append(time.perf_counter() - start)
    python_mb = len(tars[0]) / 1e6
    del tars
    wheel_s, wheel_bytes = min(wheel_layer_seconds(cache, work) for _ in range(runs))

    total6, total1 = sum(base6.values()), sum(base1.values())
    print(f"project: torch==2.13.0 (CPU, --find-links {WHEELS}), python 3.11; image {digest}")
    print(f"layers: {layer_bytes / 1e6:.0f} MB uncompressed; machine: {os.cpu_count()} cores")
    print("baseline (uv's cache pre-warmed; tar --sort=name | tee(sha256sum) | pigz -n | tee(sha256sum)):")
    for name in base6:
        print(f"  {name:34s} pigz -6: {base6[name]:6.2f} s   pigz -1: {base1[name]:6.2f} s")
    print(f"  {'total':34s} pigz -6: {total6:6.2f} s   pigz -1: {total1:6.2f} s")
    print("ours (CLI wall time):")
    print(
        f"  cold, empty cache dir (downloads .debs + deps)  {cold_empty:6.2f} s  = {cold_empty / total6:.2f}x baseline"
        f" (-6), {cold_empty / total1:.2f}x (-1)   goal <= 0.5x"
    )
    print(
        f"  cold, cache holds downloads only (layers cold)  {cold_layers:6.2f} s = {cold_layers / total6:.2f}x baseline"
        f" (-6), {cold_layers / total1:.2f}x (-1)"
    )
    print(f"  bare interpreter start-up (python -c pass)     {bare:6.2f} s")
    print(
        f"  no-op rebuild (best of {runs})                    {noop:6.2f} s = bare + {noop - bare:.2f} s   goal < 0.3 s"
    )
    print(
        f"  code-change rebuild (best of {runs}; all: {', '.join(f'{s:.2f}' for s in code_change)})"
        f"  {min(code_change):6.2f} s = bare + {min(code_change) - bare:.2f} s   goal < 0.5 s"
    )
    e2e = layer_bytes / 1e6 / cold_layers
    floor_rate = floor_mb / floor
    print("throughput (MB/s of uncompressed layer bytes):")
    print(f"  floor: sha256 + isal gzip-1 (2 threads) + sha256, in memory   {floor_rate:7.0f} MB/s ({floor_mb:.0f} MB)")
    print(
        f"  end to end, cold build with downloads present               {e2e:7.0f} MB/s = {e2e / floor_rate:.2f}x floor"
        "   goal >= 0.7x"
    )
    wl = python_mb / min(write_s)
    print(
        f"  write_layer over the installed Python tree (files on disk)   {wl:7.0f} MB/s = {wl / floor_rate:.2f}x floor"
    )
    wheel_rate = wheel_bytes / 1e6 / wheel_s
    print(
        f"  torch wheel streamed into its layer (what a build does)  {wheel_rate:7.0f} MB/s = "
        f"{wheel_rate / floor_rate:.2f}x floor ({wheel_s:.2f} s)"
    )


if __name__ == "__main__":
    main()
