"""Benchmark: weights layers on a first build, a rebuild after a code change, and zstd-1 vs none unpacking.

    .venv/bin/python scripts/bench_weights.py [--gib 4] [--files 4] [--runs 2]

The weights (random, incompressible) are created once under /tmp/ocibuild-bench-weights and reused. Every
figure is taken with the files in the page cache, after one warm-up read, so all runs see the same I/O:
- first build: ``code_layer`` + ``weights_layers`` into an empty store, against ``sha256sum`` then
  ``tar -cf`` of the same files in the same run (goal: <= 1.2x; hashing once is the floor), and against
  ``openssl dgst -sha256`` + ``tar -cf`` (SHA-NI, as Python's hashlib); wall and CPU time, best of ``--runs``;
- rebuild after editing predict.py (goal: < 1 s, independent of the weights size);
- unpack speed of one weights layer stored as plain tar vs zstd level 1, as a puller would unpack it
  (``tar -x`` vs ``zstd -dc | tar -x``), with the compressed size.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ocibuild.oci import Store
from ocibuild.sources.project.code import code_layer
from ocibuild.sources.project.fingerprint import ReadStats
from ocibuild.sources.project.weights import find_weights, project_weight_files, weights_layers

CACHE = Path("/tmp/ocibuild-bench-weights")
GiB = 1 << 30


def make_project(gib: int, files: int) -> Path:
    """A project with ``gib`` GiB of random weights in ``files`` shards (kept between runs)."""
    project = CACHE / f"project-{gib}g-{files}"
    weights = project / "weights"
    weights.mkdir(parents=True, exist_ok=True)
    shard = gib * GiB // files
    for i in range(files):
        path = weights / f"model-{i:05d}-of-{files:05d}.safetensors"
        if not path.exists() or path.stat().st_size != shard:
            with open(f"{path}.tmp", "wb") as f:
                for _ in range(shard // (64 << 20)):
                    f.write(os.urandom(64 << 20))
            os.replace(f"{path}.tmp", path)
            old = time.time() - 3600
            os.utime(path, (old, old))
    (project / "cog.yaml").write_text("predict: predict.py:Predictor\n")
    (project / "predict.py").write_text("from cog import BasePredictor\n")
    (weights / "config.json").write_text('{"architectures": ["Bench"]}\n')
    return project


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its finished children so far."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(fn) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds, result) of ``fn()``."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = fn()
    return time.perf_counter() - wall, cpu_seconds() - cpu, result


def shell(cmd: str) -> tuple[float, float]:
    wall, cpu, _ = timed(lambda: subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL))
    return wall, cpu


def build(project: Path, store: Store, stats: ReadStats, code_stats: ReadStats | None = None):
    """The code layer and the weights layers of ``project``; ``stats`` counts the weights' reads."""
    found = find_weights(project)
    code = code_layer(project, store, 0, exclude_paths=found, stats=code_stats)
    return code, weights_layers(project_weight_files(project, found), store, stats=stats)


def first_build(project: Path, out: Path, runs: int) -> None:
    """Best of ``runs`` (by wall time) for each contender, each writing into an empty ``out``."""
    files = " ".join(sorted(str(p) for p in (project / "weights").glob("*.safetensors")))
    shell(f"cat {files} > /dev/null")  # warm the page cache for every contender

    def pair(hasher: str) -> tuple[float, float]:
        hashed, packed = shell(f"{hasher} {files}"), shell(f"tar -cf {out}/baseline.tar {files} 2>/dev/null")
        return hashed[0] + packed[0], hashed[1] + packed[1]

    def ours() -> tuple[float, float]:
        stats = ReadStats()
        wall, cpu, _ = timed(lambda: build(project, Store(out / "store"), stats))
        assert stats.files_hashed > 0, "a first build reads the weights"
        return wall, cpu

    results: dict[str, tuple[float, float]] = {}
    for label, run in (
        ("sha256sum + tar -cf", lambda: pair("sha256sum")),
        ("openssl sha256 + tar -cf", lambda: pair("openssl dgst -sha256")),
        ("ocibuild first build", ours),
    ):
        for _ in range(runs):
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            wall, cpu = run()
            if label not in results or wall < results[label][0]:
                results[label] = (wall, cpu)
    base_wall, base_cpu = results["sha256sum + tar -cf"]
    for label, (wall, cpu) in results.items():
        print(f"  {label:25}: {wall:6.2f} s wall ({wall / base_wall:.2f}x), {cpu:6.2f} s CPU ({cpu / base_cpu:.2f}x)")


def rebuild(project: Path, out: Path) -> None:
    predict = project / "predict.py"
    original = predict.read_text()
    try:
        predict.write_text(original + f"# edit {time.time()}\n")
        stats, code_stats = ReadStats(), ReadStats()
        seconds, _, _ = timed(lambda: build(project, Store(out / "store"), stats, code_stats))
    finally:
        predict.write_text(original)
    print(
        f"  rebuild after editing predict.py: {seconds * 1000:.1f} ms (code files hashed: {code_stats.files_hashed}; "
        f"weights: {stats.bytes_read} bytes read, {stats.layers_reused} layers reused, {stats.layers_written} written)"
    )


def unpack_speed(project: Path, out: Path, work: Path) -> None:
    import zstandard

    shard = sorted((project / "weights").glob("*.safetensors"))[0]
    _, layers = build(project, Store(out / "store"), ReadStats())
    plain = next(layer for name, layer in layers if name.endswith(shard.name))
    packed = work / "layer.tar.zst"
    compress = zstandard.ZstdCompressor(level=1, threads=-1)
    seconds, _, _ = timed(lambda: packed.write_bytes(compress.compress(plain.path.read_bytes())))
    for label, cmd, size in (
        ("none  ", f"tar -xf {plain.path} -C {work}/unpack", plain.size),
        ("zstd-1", f"zstd -dc -q {packed} | tar -xf - -C {work}/unpack", packed.stat().st_size),
    ):
        best = float("inf")
        for _ in range(3):
            shutil.rmtree(work / "unpack", ignore_errors=True)
            (work / "unpack").mkdir()
            best = min(best, shell(cmd)[0])
        print(
            f"  {label}: blob {size / GiB:.3f} GiB ({size / plain.size:.4f} of plain), "
            f"unpack {best:5.2f} s = {plain.size / GiB / best:.2f} GiB/s"
        )
    print(f"  (compressing that layer with zstd-1 took {seconds:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--gib", type=int, default=4)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--runs", type=int, default=2, help="runs of each first-build contender (best kept)")
    args = parser.parse_args()
    project = make_project(args.gib, args.files)
    print(
        f"{args.gib} GiB of random weights in {args.files} files; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        work = Path(tmp)
        print("first build:")
        first_build(project, work / "out", args.runs)
        print("rebuild:")
        rebuild(project, work / "out")
        print("unpack one weights layer:")
        unpack_speed(project, work / "out", work)


if __name__ == "__main__":
    main()
