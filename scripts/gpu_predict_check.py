#!/usr/bin/env python3
"""On the GPU machine: run the prepared GPU example (runner + code layers) over this machine's own Python
environment and predict on the GPU through ocibuild's runtime (runc, else unshare/chroot), with --gpus all.

The image is the prepared layout plus a first layer of this host's top-level symlinks; the host's /usr, /lib
and Python environment are bound read-only, so the model uses the torch installed here.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INPUTS = os.environ.get("GPU_CHECK_INPUTS", "size=4096").split()
sys.path.insert(0, str(REPO))

from ocibuild.oci import Compression, Entry, ImageConfig, Store, build_image, read_layout, write_layer  # noqa: E402
from ocibuild.oci.image import History  # noqa: E402
from ocibuild.run import predict  # noqa: E402


def host_volumes() -> list[str]:
    paths = {"/usr", os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))), sys.prefix}
    paths |= {
        f"/{n}" for n in ("bin", "lib", "lib64", "sbin") if os.path.isdir(f"/{n}") and not os.path.islink(f"/{n}")
    }
    keep = sorted(p for p in paths if os.path.isdir(p))
    keep = [p for p in keep if not any(p != q and p.startswith(q + "/") for q in keep)]
    return [f"{p}:{p}:ro" for p in keep]


def main(runtimes: list[str]) -> int:
    prepared = read_layout(REPO / "build" / "gpu-check" / "layout")
    failed = 0
    with tempfile.TemporaryDirectory() as scratch:
        store = Store(Path(scratch) / "store")
        links = [
            Entry.symlink(n, os.readlink(f"/{n}")) for n in ("bin", "sbin", "lib", "lib64") if os.path.islink(f"/{n}")
        ]
        host = write_layer([*links, Entry.directory("tmp", 0o1777)], store, Compression.NONE)
        config = prepared.config["config"]
        python_dir = os.path.dirname(sys.executable)
        env = [e for e in config["Env"] if not e.startswith("PATH=")] + [f"PATH={python_dir}:/usr/bin:/bin"]
        image = build_image(
            [host, *prepared.layers],
            ImageConfig(env=env, cmd=config["Cmd"], working_dir=config["WorkingDir"], labels=config.get("Labels", {})),
            history=[History("host"), History("runner"), History("code")],
        )
        for runtime in runtimes:
            start = time.monotonic()
            print(f"== ocibuild predict --gpus all --runtime {runtime} (python {sys.version.split()[0]})", flush=True)
            try:
                result = predict(
                    image,
                    store,
                    INPUTS,
                    None,
                    None,
                    gpus=True,
                    volumes=host_volumes(),
                    runtime=runtime,
                    setup_timeout=240,
                )
                print(f"status={result.status} in {time.monotonic() - start:.1f}s", flush=True)
                failed += result.status != "succeeded"
            except Exception as exc:  # report and try the next runtime
                print(f"FAILED: {type(exc).__name__}: {exc}", flush=True)
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["runc", "unshare"]))
