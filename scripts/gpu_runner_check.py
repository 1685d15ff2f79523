#!/usr/bin/env python3
"""GPU check for the bundled runner (run on a machine with an NVIDIA GPU and a CUDA build of torch).

    python scripts/gpu_runner_check.py [--gb 1] [--dir /tmp]

Serves a torch predictor with ``python -m cog.server.http`` whose setup() loads a safetensors file of ``--gb`` GB
to the GPU with ``cog.weights.load_safetensors``, and reports /health-check GPUs, setup time and prediction
latency. The loader's bandwidth against raw host-to-device copies is scripts/bench_weights_load.py.
Exits 0 with a SKIP line when torch or CUDA is missing.
"""

from __future__ import annotations

import argparse
import ctypes
import http.client
import json
import os
import pathlib
import socket
import struct
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
RUNNER = ROOT / "layers" / "runner"
sys.path.insert(0, str(RUNNER))

PREDICTOR = """
import time
import torch
from cog import BasePredictor, Input
from cog.weights import load_safetensors


class Predictor(BasePredictor):
    def setup(self):
        started = time.perf_counter()
        self.weights = load_safetensors("{path}", device="cuda")
        torch.cuda.synchronize()
        self.load_seconds = time.perf_counter() - started
        print(f"loaded {{len(self.weights)}} tensors in {{self.load_seconds:.2f}}s")

    def predict(self, size: int = Input(default=2048, ge=1, le=8192)) -> dict:
        x = torch.randn(size, size, device="cuda")
        y = (x @ x).sum().item()
        first = next(iter(self.weights.values()))
        return {{"device": torch.cuda.get_device_name(), "matmul_sum": y, "first_tensor_device": str(first.device),
                 "setup_load_seconds": self.load_seconds}}
"""


def write_file(path: pathlib.Path, gigabytes: float, tensor_mib: int = 256) -> int:
    """A BF16 safetensors file of about ``gigabytes`` GB, written tensor by tensor."""
    import torch

    count = max(1, int(gigabytes * 1e9) // (tensor_mib << 20))
    elements = (tensor_mib << 20) // 2
    header, offset = {}, 0
    for index in range(count):
        header[f"layer{index}.weight"] = {
            "dtype": "BF16",
            "shape": [elements],
            "data_offsets": [offset, offset + 2 * elements],
        }
        offset += 2 * elements
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)) + encoded)
        for index in range(count):
            tensor = torch.full((elements,), float(index % 100) / 7, dtype=torch.bfloat16)
            handle.write(ctypes.string_at(tensor.data_ptr(), 2 * elements))
    return offset


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_predictor(weights: pathlib.Path, scratch: pathlib.Path) -> None:
    project = scratch / "project"
    project.mkdir()
    (project / "predict.py").write_text(PREDICTOR.format(path=weights))
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(RUNNER), PORT=str(port), COG_PREDICT_TYPE_STUB="predict.py:Predictor")
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "cog.server.http", "--host", "127.0.0.1"], cwd=project, env=env)
    try:
        health = {}
        while time.perf_counter() - started < 300:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                connection.request("GET", "/health-check")
                health = json.loads(connection.getresponse().read())
                if health["status"] != "STARTING":
                    break
            except (OSError, ValueError, http.client.HTTPException):
                pass
            time.sleep(0.05)
        ready_after = time.perf_counter() - started
        print(f"runner: status {health.get('status')} after {ready_after:.2f}s (process start → READY)")
        print(f"runner: /health-check gpus = {json.dumps(health.get('gpus'))}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for attempt in range(3):
            begun = time.perf_counter()
            connection.request(
                "POST", "/predictions", json.dumps({"input": {"size": 4096}}), {"Content-Type": "application/json"}
            )
            body = json.loads(connection.getresponse().read())
            milliseconds = (time.perf_counter() - begun) * 1e3
            outcome = body.get("output") or body.get("error")
            print(f"runner: prediction {attempt} in {milliseconds:.1f} ms → {body.get('status')} {outcome}")
    finally:
        process.terminate()
        process.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gb", type=float, default=1.0, help="size of the safetensors file (default 1 GB)")
    parser.add_argument("--dir", default=None, help="where to write it (default: a temporary directory)")
    arguments = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("SKIP: torch is not installed")
        return 0
    if not torch.cuda.is_available():
        print("SKIP: no CUDA device visible to torch")
        return 0
    from cog import gpu

    print(f"gpus (NVML): {json.dumps(gpu.describe())}")
    with tempfile.TemporaryDirectory(dir=arguments.dir) as scratch:
        scratch_path = pathlib.Path(scratch)
        weights = scratch_path / "model.safetensors"
        started = time.perf_counter()
        size = write_file(weights, arguments.gb)
        print(f"wrote {size / 1e9:.2f} GB in {time.perf_counter() - started:.1f}s")
        serve_predictor(weights, scratch_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
