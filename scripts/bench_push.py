"""Benchmark: push a ~1 GB multi-layer image to a local registry with ocibuild vs ``skopeo copy``.

Each cold push goes to its own fresh registry; then an unchanged re-push with ocibuild. Goals: cold push
<= 1.0x skopeo; re-push < 0.5 s.

    python scripts/bench_push.py [--size-mb 1024] [--layers 4] [--compression none|gzip] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from registry import start_registry

from ocibuild.oci import Compression, Entry, Image, ImageConfig, Store, build_image, write_layer, write_layout
from ocibuild.registry import Progress, push


def make_image(work: Path, size_mb: int, layers: int, compression: Compression):
    store = Store(work / "store")
    per_layer = (size_mb << 20) // layers
    blobs = []
    for i in range(layers):
        data = work / f"layer{i}.bin"
        with open(data, "wb") as f:
            for _ in range(per_layer >> 20):
                f.write(os.urandom(1 << 20))
        blobs.append(write_layer([Entry.file_from(f"data/layer{i}.bin", data)], store, compression))
        data.unlink()
    return build_image(blobs, ImageConfig(cmd=["/bin/true"]))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_skopeo(work: Path, round_: int, results: dict[str, list[float]]) -> None:
    root = work / f"reg-skopeo-{round_}"
    with start_registry(root) as reg:
        dest = f"docker://{reg.host}/bench/skopeo:v1"
        cmd = ["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{work / 'layout'}:latest", dest]
        results["skopeo_cold"].append(timed(lambda: subprocess.run(cmd, check=True)))
    shutil.rmtree(root)


def bench_ocibuild(
    work: Path, round_: int, image: Image, args: argparse.Namespace, results: dict[str, list[float]]
) -> None:
    root = work / f"reg-ocibuild-{round_}"
    with start_registry(root) as reg:
        ref = [f"{reg.host}/bench/ocibuild:v1"]
        chunk = args.chunk_mb << 20 or None

        def go() -> None:
            push(image, ref, jobs=args.jobs, chunk_size=chunk, progress=Progress())

        results["ocibuild_cold"].append(timed(go))
        results["ocibuild_repush"].append(timed(go))
    shutil.rmtree(root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--compression", choices=["none", "gzip"], default="none")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--chunk-mb", type=int, default=0, help="chunked PATCHes of this size (0: one streaming PATCH)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-push."))
    try:
        t0 = time.perf_counter()
        image = make_image(work, args.size_mb, args.layers, Compression(args.compression))
        total = sum(layer.size for layer in image.layers)
        write_layout(work / "layout", image, ["latest"])
        print(f"image: {len(image.layers)} layers, {total / 1e6:.0f} MB, built in {time.perf_counter() - t0:.1f} s")
        results: dict[str, list[float]] = {"skopeo_cold": [], "ocibuild_cold": [], "ocibuild_repush": []}
        for round_ in range(args.rounds):
            runs = [
                lambda r=round_: bench_skopeo(work, r, results),
                lambda r=round_: bench_ocibuild(work, r, image, args, results),
            ]
            for run in runs if round_ % 2 == 0 else reversed(runs):  # alternate who goes first
                run()
        summary = {name: round(min(times), 3) for name, times in results.items()}
        summary["cold_ratio_vs_skopeo"] = round(summary["ocibuild_cold"] / summary["skopeo_cold"], 3)
        summary["throughput_MBps"] = round(total / 1e6 / summary["ocibuild_cold"], 1)
        print(json.dumps({"all_runs_s": results, "best_s": summary}, indent=2))
        ok = summary["cold_ratio_vs_skopeo"] <= 1.0 and summary["ocibuild_repush"] < 0.5
        print("goals met" if ok else "goals NOT met")
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
