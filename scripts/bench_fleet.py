"""Benchmark: a fleet sharing layers through a registry (``--cache-repo``), issue 20.

In one run, against one local registry: machine A builds the torch-CPU example on a fresh store and pushes it
(``--cache-repo`` publishes its layers); machine B, another fresh store, builds and pushes the same project with
the warm cache repository. Each is ``ocibuild build --push`` in its own process, timed end to end. Goals: B at most
0.2x A's wall time, and zero layer bytes uploaded by B (each layer mounted from the cache repository or present).

A "fresh store" holds only downloads (.debs, wheels, Debian indexes) hard-linked from ``--seed`` when given (the
test suite's store by default): no layers, no keys. So the cold build is only the layer work, never the network,
the hardest baseline for the ratio. ``--seed ''`` starts from an empty store (downloads count too).
An untimed warm-up build first (another fresh store, no registry) leaves both timed builds the same interpreter
bytecode and page cache; where PYTHONDONTWRITEBYTECODE is set, bytecode goes under the run's temp dir
(``--no-bytecode`` keeps the variable: every process then compiles ocibuild's source, ~1 s here).

    python scripts/bench_fleet.py [--example examples/torch-cpu] [--find-links DIR] [--seed DIR] [--no-bytecode]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from registry import start_registry  # noqa: E402

DEFAULT_SEED = Path.home() / ".cache" / "ocibuild-test" / "store"
LINE = re.compile(r"^([0-9a-f]{12}): (uploaded|mounted|exists)(?: ([0-9.]+) (B|kB|MB|GB))?")
UNITS = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}


def default_find_links() -> list[str]:
    """The wheel folder(s) of ``pip config list`` (``global.find-links``), as the example's cog.yaml asks."""
    try:
        out = subprocess.run(["pip", "config", "list"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return []
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.strip().endswith("find-links"):
            return value.strip().strip("'\"").split()
    return []


def fresh_store(path: Path, seed: Path | None) -> Path:
    path.mkdir(parents=True)
    for part in ("debs", "wheels", "debian"):
        if seed is not None and (seed / part).is_dir():
            shutil.copytree(seed / part, path / part, copy_function=_link)
    return path


def _link(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def child_env(work: Path, bytecode: bool) -> dict[str, str]:
    """The builds' environment. With ``bytecode``, Python caches compiled modules under ``work`` (an installed
    ocibuild has its bytecode; PYTHONDONTWRITEBYTECODE=1 would make each process compile ~1 s of source)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OCIBUILD_CACHE", "SOURCE_DATE_EPOCH")}
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env


def machine(
    name: str, work: Path, project: Path, host: str | None, find_links: list[str], seed: Path | None, env: dict
) -> dict:
    store = fresh_store(work / f"store-{name}", seed)
    checkout = work / f"project-{name}"
    shutil.copytree(project, checkout, ignore=shutil.ignore_patterns(".ocibuild", "__pycache__"))
    output = work / f"layout-{name}"
    cmd = [
        sys.executable, "-m", "ocibuild", "build", str(checkout),
        "--cache-dir", str(store), "-o", str(output), "--progress", "plain",
        "--source-date-epoch", "1700000000",
        *(("--cache-repo", f"{host}/fleet/cache", "--push", "-t", f"{host}/fleet/model-{name}:v1") if host else ()),
        *(arg for folder in find_links for arg in ("--find-links", folder)),
    ]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=work)
    wall = time.perf_counter() - start
    if os.environ.get("BENCH_FLEET_LOGS"):
        Path(os.environ["BENCH_FLEET_LOGS"], f"machine-{name}.log").write_text(done.stderr)
    if done.returncode != 0:
        sys.exit(f"machine {name}: build failed ({done.returncode}):\n{done.stderr[-3000:]}")
    if host is None:
        return {"wall_s": round(wall, 2)}
    layers = _layers(output)
    uploaded = {}
    for line in done.stderr.splitlines():
        m = LINE.match(line)
        if m and m.group(2) == "uploaded":
            uploaded[m.group(1)] = float(m.group(3) or 0) * UNITS[m.group(4) or "B"]
    layer_bytes = sum(size for short, size in uploaded.items() if short in layers)
    return {
        "wall_s": round(wall, 2),
        "digest": done.stdout.split("@")[-1].strip(),
        "layers": len(layers),
        "layers_uploaded": sum(1 for short in uploaded if short in layers),
        "layer_bytes_uploaded": int(layer_bytes),
        "cache_lines": [line for line in done.stderr.splitlines() if "cache " in line][-3:],
    }


def _layers(layout: Path) -> set[str]:
    """The 12-hex short digests of the image's layers, from the OCI layout the build wrote."""
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":", 1)[1]
    manifest = json.loads((layout / "blobs" / "sha256" / digest).read_text())
    return {layer["digest"].split(":", 1)[1][:12] for layer in manifest["layers"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--example", type=Path, default=REPO / "examples" / "torch-cpu")
    parser.add_argument("--find-links", action="append", default=None, help="default: pip config's find-links")
    parser.add_argument("--seed", default=str(DEFAULT_SEED), help="store whose downloads seed each fresh store")
    parser.add_argument("--no-bytecode", action="store_true", help="keep PYTHONDONTWRITEBYTECODE as it is")
    args = parser.parse_args()
    find_links = args.find_links if args.find_links is not None else default_find_links()
    seed = Path(args.seed) if args.seed and Path(args.seed).is_dir() else None
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        work = Path(tmp)
        env = child_env(work, not args.no_bytecode)
        machine("warm-up", work, args.example, None, find_links, seed, env)  # untimed: bytecode, page cache
        with start_registry(work / "registry") as registry:
            cold = machine("a", work, args.example, registry.host, find_links, seed, env)
            warm = machine("b", work, args.example, registry.host, find_links, seed, env)
    ratio = warm["wall_s"] / cold["wall_s"]
    report = {
        "example": str(args.example),
        "seed": str(seed) if seed else None,
        "bytecode": not args.no_bytecode,
        "cold_build_and_push": cold,
        "fresh_store_warm_cache": warm,
        "ratio": round(ratio, 3),
        "same_digest": cold["digest"] == warm["digest"],
        "goal": "ratio <= 0.2 and zero layer bytes uploaded by B",
        "met": ratio <= 0.2 and warm["layer_bytes_uploaded"] == 0 and cold["digest"] == warm["digest"],
    }
    print(json.dumps(report, indent=2))
    return 0 if report["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
