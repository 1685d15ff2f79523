"""Benchmark: what a node waits for. Push images to a local registry, then time ``podman pull`` into fresh storage.

For each compression (gzip, zstd, zstd:chunked), each split (``--max-layer-size``: ``none`` or a size) and each
layout it pulls model A into a fresh overlay store (a
cold node), then model B, which shares torch with A but has other code and was built at another commit (a node
that already runs A). Layouts:

- ``ocibuild``: the example as ocibuild builds it (torch in its own pinned layer, other wheels, runner, code; with
  a split size, torch's layer split by path into parts of at most that many bytes of files);
- ``cog``: the same content laid out as Cog does: every Python package in one layer, stamped with the build's
  time (Docker layers carry install-time mtimes, so two builds never share it); built here from ocibuild's
  layers (unsplit builds only).

Bytes are counted by a TCP proxy between podman and the registry (everything podman downloads); podman's store
has partial pulls enabled (``enable_partial_images``), which only zstd:chunked layers use.

``--one-at-a-time`` bounds the disk for large images (the GPU example: ~4 GB per encoding, ~7 GB unpacked): each
compression is built in an empty store, pushed to a registry of its own and pulled; the store is emptied once
nothing needs it (wheels included: each compression downloads them again), the layouts after the push, and the
registry's storage before the next compression (whose rounds then run back to back, not interleaved with the
other compressions'). Temporary folders (podman's stores included) go under ``$TMPDIR``.

    python scripts/bench_coldstart.py [--example examples/torch-cpu] [--find-links DIR] [--work DIR]
        [--compressions gzip,zstd,zstd:chunked] [--splits none,256M] [--layouts ocibuild,cog] [--rounds N]
        [--one-at-a-time] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from count_proxy import CountingProxy
from registry import start_registry

from ocibuild.oci import Compression, Store, write_layer
from ocibuild.oci.canonical import canonical_json
from ocibuild.oci.compression import open_decompressor
from ocibuild.oci.digest import sha256_digest
from ocibuild.oci.entries import entries_from_tree
from ocibuild.oci.image import Image
from ocibuild.oci.layer import LayerBlob
from ocibuild.oci.layout import read_layout
from ocibuild.registry import push

SCRIPTS = Path(__file__).resolve().parent
OCIBUILD = [sys.executable, "-m", "ocibuild"]
SDE = {"A": 1_700_000_000, "B": 1_700_086_400}


def pip_find_links() -> str:
    """The wheel folder pip is configured with (``pip config list``: ``*.find-links``), else /opt/wheels."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["pip", "config", "list"], capture_output=True, text=True, timeout=30).stdout
        for line in out.splitlines():
            key, _, value = line.partition("=")
            if key.endswith("find-links"):
                return value.strip().strip("'\"").split()[0]
    return "/opt/wheels"


def make_models(example: Path, work: Path) -> dict[str, Path]:
    """Model A is the example; model B the same requirements with other code (another commit)."""
    models = {}
    for name in ("A", "B"):
        target = work / f"model{name}"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(example, target, ignore=shutil.ignore_patterns(".ocibuild"))
        if name == "B":
            predict = target / "predict.py"
            predict.write_text(predict.read_text() + "\n# model B: other code, built at another commit\n")
        models[name] = target
    return models


def build(model: Path, compression: str, split: str, out: Path, cache: Path, find_links: str, sde: int) -> Image:
    cmd = [*OCIBUILD, "build", str(model), "--compression", compression, "--cache-dir", str(cache), "-q"]
    cmd += ["-o", str(out), "--find-links", find_links, "--source-date-epoch", str(sde)]
    cmd += [] if split == "none" else ["--max-layer-size", split]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    image = read_layout(out)
    assert isinstance(image, Image)
    return image


def cog_shaped(image: Image, compression: Compression, store: Store, sde: int, scratch: Path) -> Image:
    """The image with every ``python:`` layer merged into one, stamped with ``sde`` (Cog's pip layer)."""
    config = json.loads(image.config_bytes)
    manifest = json.loads(image.manifest_bytes)
    layer_history = [h for h in config["history"] if not h.get("empty_layer")]
    python = [i for i, h in enumerate(layer_history) if h.get("comment", "").startswith("python:")]
    tree = Path(tempfile.mkdtemp(prefix="cog-pip-", dir=scratch))
    try:
        for i in python:
            layer = image.layers[i]
            with (
                open(layer.path, "rb") as f,
                tarfile.open(
                    fileobj=open_decompressor(Compression.from_media_type(layer.media_type), f), mode="r|"
                ) as tar,
            ):
                tar.extractall(tree, filter="tar")
        merged = write_layer(entries_from_tree(tree, preserve_modes=True), store, compression, sde)
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    layers: list[LayerBlob] = []
    descriptors: list[dict] = []
    diff_ids: list[str] = []
    history: list[dict] = []
    for i, layer in enumerate(image.layers):
        if i in python[1:]:
            continue
        if i == python[0]:
            layer = merged
            entry = {"created_by": "RUN pip install -r requirements.txt", "comment": "cog: all Python packages"}
            history.append(entry)
            descriptors.append(merged.descriptor().to_dict())
        else:
            history.append(layer_history[i])
            descriptors.append(manifest["layers"][i])
        layers.append(layer)
        diff_ids.append(layer.diff_id if i == python[0] else config["rootfs"]["diff_ids"][i])
    config["rootfs"]["diff_ids"] = diff_ids
    config["history"] = history
    config_bytes = canonical_json(config)
    manifest["layers"] = descriptors
    manifest["config"] = {**manifest["config"], "digest": sha256_digest(config_bytes), "size": len(config_bytes)}
    return Image(config_bytes, canonical_json(manifest), tuple(layers), image.format, image.platform)


def podman(storage: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CONTAINERS_STORAGE_CONF=str(storage / "storage.conf"))
    base = ["podman", "--root", str(storage / "root"), "--runroot", str(storage / "run")]
    return subprocess.run([*base, *args], capture_output=True, text=True, env=env, check=check, timeout=1800)


@contextlib.contextmanager
def fresh_storage():
    """A private overlay store under $TMPDIR (keep it short: podman wants a runroot under 50 characters), partial
    pulls on."""
    path = Path(tempfile.mkdtemp(prefix="cold-"))
    (path / "storage.conf").write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{path / "root"}"\nrunroot = "{path / "run"}"\n'
        '[storage.options]\npull_options = {enable_partial_images = "true", use_hard_links = "false"}\n'
    )
    try:
        yield path
    finally:
        podman(path, "rmi", "--all", "--force", check=False)
        shutil.rmtree(path, ignore_errors=True)


def timed_pull(storage: Path, ref: str, proxy: CountingProxy) -> dict[str, float]:
    proxy.reset()
    start = time.perf_counter()
    podman(storage, "pull", "-q", "--tls-verify=false", ref)
    return {"seconds": round(time.perf_counter() - start, 2), "bytes": proxy.downloaded}


def _median(pulls: list[dict]) -> dict:
    """The median time over rounds (the slower for 2), and the best (bytes are the same every round)."""
    times = sorted(p["seconds"] for p in pulls)
    median = times[len(times) // 2]
    return {
        "seconds": median,
        "best": times[0],
        "bytes": pulls[0]["bytes"],
        "all_seconds": [p["seconds"] for p in pulls],
    }


Key = tuple[str, str, str, str]  # layout, compression, split, model


def build_images(
    compression: str,
    splits: list[str],
    layouts: list[str],
    models: dict[str, Path],
    work: Path,
    store: Store,
    find_links: str,
) -> dict[Key, Image]:
    """Model A and B of every split and layout, in one compression."""
    images: dict[Key, Image] = {}
    for split in splits:
        for name, model in models.items():
            started = time.perf_counter()
            out = work / f"out-{name}-{compression}-{split}"
            image = build(model, compression, split, out, store.root, find_links, SDE[name])
            print(f"built {name} {compression} {split} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
            images["ocibuild", compression, split, name] = image
            if "cog" in layouts and split == "none":
                cog = cog_shaped(image, Compression(compression), store, SDE[name], work)
                images["cog", compression, split, name] = cog
    return images


def drop_images(images: dict[Key, Image], store: Store, work: Path) -> None:
    """Delete the images' layouts and empty the store (pushed; the next compression builds from scratch)."""
    for layout, compression, split, name in images:
        if layout == "ocibuild":
            shutil.rmtree(work / f"out-{name}-{compression}-{split}", ignore_errors=True)
    store.prune(everything=True)


def in_store(images: dict[Key, Image], store: Store) -> bool:
    """Whether a layer of ``images`` is read from the store (the Cog-shaped merged layer) rather than a layout."""
    return any(Path(layer.path).is_relative_to(store.root) for image in images.values() for layer in image.layers)


def measure(
    images: dict[Key, Image], registry_dir: Path, rounds: int, after_push: Callable[[], None] | None = None
) -> list[dict]:
    """Push ``images`` to a registry in ``registry_dir`` (then call ``after_push``), pull every variant ``rounds``
    times; one row each."""
    variants = list(dict.fromkeys(key[:3] for key in images))
    results = []
    with start_registry(registry_dir) as reg, CountingProxy(reg.host) as proxy:
        refs = {}
        for (layout, compression, split, name), image in images.items():
            repo = f"{reg.host}/bench/{layout}-{compression.replace(':', '-')}-{split.lower()}-{name.lower()}:v1"
            started = time.perf_counter()
            push(image, [repo], insecure_registries=[reg.host], progress=None)
            print(f"pushed {repo} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
            refs[layout, compression, split, name] = repo.replace(reg.host, proxy.host)
        if after_push is not None:
            after_push()
        runs: dict[tuple[str, str, str], list[tuple[dict, dict]]] = {}
        for _ in range(rounds):  # rounds interleave the variants, so load drifts hit them all alike
            for variant in variants:
                with fresh_storage() as storage:
                    a = timed_pull(storage, refs[(*variant, "A")], proxy)
                    b = timed_pull(storage, refs[(*variant, "B")], proxy)
                print(f"pulled {variant}: A {a}, B {b}", file=sys.stderr)
                runs.setdefault(variant, []).append((a, b))
        for (layout, compression, split), pulls in runs.items():
            a, b = (_median([pull[i] for pull in pulls]) for i in (0, 1))
            layers = images[layout, compression, split, "A"].layers
            row = {"layout": layout, "compression": compression, "split": split, "layers": len(layers)}
            row |= {"image_bytes": sum(layer.size for layer in layers), "A": a, "B_after_A": b}
            results.append(row)
            print(json.dumps(row), file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--example", type=Path, default=SCRIPTS.parent / "examples" / "torch-cpu")
    parser.add_argument("--find-links", default=None, help="wheel folder (default: pip config's find-links)")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--compressions", default="gzip,zstd,zstd:chunked")
    parser.add_argument("--splits", default="none", help="--max-layer-size values to build with ('none': unsplit)")
    parser.add_argument("--layouts", default="ocibuild,cog")
    parser.add_argument("--rounds", type=int, default=1, help="pull each image this many times (median)")
    parser.add_argument(
        "--one-at-a-time",
        action="store_true",
        help="build, push and pull one compression at a time, deleting its images and registry before the next",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the results here too")
    args = parser.parse_args(argv)
    find_links = args.find_links or pip_find_links()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-coldstart-"))
    work.mkdir(parents=True, exist_ok=True)
    compressions = args.compressions.split(",")
    splits = args.splits.split(",")
    layouts = args.layouts.split(",")
    models = make_models(args.example, work)
    store = Store(work / "cache")
    results: list[dict] = []

    if args.one_at_a_time:
        for compression in compressions:
            images = build_images(compression, splits, layouts, models, work, store, find_links)
            if not in_store(images, store):
                store.prune(everything=True)  # the layouts hold every layer: drop the wheels and blobs before pushing
            registry_dir = work / f"registry-{compression.replace(':', '-')}"
            try:
                results += measure(
                    images, registry_dir, args.rounds, functools.partial(drop_images, images, store, work)
                )
            finally:
                drop_images(images, store, work)
                shutil.rmtree(registry_dir, ignore_errors=True)
            if args.json:
                args.json.write_text(json.dumps({"find_links": find_links, "results": results}, indent=1))
    else:
        images: dict[Key, Image] = {}
        for compression in compressions:
            images |= build_images(compression, splits, layouts, models, work, store, find_links)
        results = measure(images, work / "registry", args.rounds)

    unsplit_gzip = [r for r in results if (r["layout"], r["compression"], r["split"]) == ("ocibuild", "gzip", "none")]
    base = (unsplit_gzip or results)[0]
    print(
        f"{'layout':9} {'compression':13} {'split':6} {'layers':>6} {'image MB':>9} {'A pull s':>9} {'A best s':>9} "
        f"{'A MB':>8} {'A s/gzip':>9} {'best/gzip':>9} {'B pull s':>9} {'B MB':>8} {'B/A bytes':>10}"
    )
    for r in results:
        a, b = r["A"], r["B_after_A"]
        print(
            f"{r['layout']:9} {r['compression']:13} {r['split']:6} {r['layers']:6} {r['image_bytes'] / 1e6:9.1f} "
            f"{a['seconds']:9.2f} {a['best']:9.2f} {a['bytes'] / 1e6:8.1f} {a['seconds'] / base['A']['seconds']:9.2f} "
            f"{a['best'] / base['A']['best']:9.2f} {b['seconds']:9.2f} "
            f"{b['bytes'] / 1e6:8.2f} {b['bytes'] / max(a['bytes'], 1):10.3f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"find_links": find_links, "results": results}, indent=1))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
