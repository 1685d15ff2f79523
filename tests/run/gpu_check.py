"""Device check for ``--gpus all`` (run it on a machine with an NVIDIA GPU; pytest does not collect it).

    python -m tests.run.gpu_check [runtime ...]     # from the repository root; runtimes: auto (default), runc, unshare

An image of a few symlinks, run with the host's /usr/bin, /usr/lib and Python bound read-only, must see the
GPU through ``run_image(..., gpus=True)``: ``nvidia-smi -L``, then CUDA from Python (torch when the host's
Python has it, else ``cuInit`` through ctypes). Prints what ran where; exits non-zero when a runtime failed.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from ocibuild.oci import Compression, Entry, ImageConfig, Store, build_image, write_layer
from ocibuild.run import run_image
from ocibuild.run.gpu import gpu_setup

CUDA_CHECK = """
import ctypes, os
print("LD_LIBRARY_PATH", os.environ.get("LD_LIBRARY_PATH"))
try:
    import torch
    x = torch.ones(1024, 1024, device="cuda")
    print("torch", torch.__version__, torch.cuda.get_device_name(0), float((x @ x).sum()))
except ImportError:
    cuda = ctypes.CDLL("libcuda.so.1")
    count = ctypes.c_int()
    print("cuInit", cuda.cuInit(0), "cuDeviceGetCount", cuda.cuDeviceGetCount(ctypes.byref(count)), count.value)
"""


def host_image(store: Store):
    entries = [Entry.symlink(name, os.readlink(f"/{name}")) for name in ("bin", "sbin", "lib", "lib64")
               if os.path.islink(f"/{name}")]  # fmt: skip
    layer = write_layer(entries or [Entry.directory("srv")], store, Compression.NONE)
    return build_image([layer], ImageConfig(env=["PATH=/usr/bin:/bin"], cmd=["/bin/sh"]))


def host_volumes() -> list[str]:
    paths = {"/usr/bin", "/usr/lib", "/usr/lib64", "/usr/sbin"}
    paths |= {p for p in (sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable)))}
    for name in ("bin", "lib", "lib64", "sbin"):
        if not os.path.islink(f"/{name}") and os.path.isdir(f"/{name}"):
            paths.add(f"/{name}")
    keep = sorted(p for p in paths if os.path.isdir(p))
    keep = [p for p in keep if not any(p != q and p.startswith(q + "/") for q in keep)]
    return [f"{p}:{p}:ro" for p in keep]


def main(runtimes: list[str]) -> int:
    setup = gpu_setup()
    print("devices:", [d.path for d in setup.devices])
    print("binds:", [inside for _, inside in setup.binds])
    failed = []
    with tempfile.TemporaryDirectory() as scratch:
        store = Store(Path(scratch))
        image = host_image(store)
        volumes = host_volumes()
        for runtime in runtimes:
            for command in (
                ["/bin/sh", "-c", "ls /dev | grep nvidia | tr '\\n' ' '; echo; nvidia-smi -L"],
                [sys.executable, "-c", CUDA_CHECK],
            ):
                print(f"--- runtime={runtime}: {command[0]}", flush=True)
                code = run_image(image, store, command=command, volumes=volumes, gpus=True, runtime=runtime)
                print(f"--- exit {code}", flush=True)
                if code != 0:
                    failed.append((runtime, command[0]))
    print("FAILED:" if failed else "ALL OK", failed or "")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["auto"]))
