#!/usr/bin/env python3
"""Benchmark the bundled runner against Cog's own runtime (coglet) in the same run; prints ratios.

    python scripts/bench_runner.py [--cog-venv ~/.cache/ocibuild-test/cog-venv] [--requests 2000]

1. trivial sync predictor, one keep-alive client, sequential requests: p50/p99 latency and 409 count;
2. async predictor, COG_MAX_CONCURRENCY=8, 8 concurrent keep-alive clients: throughput;
3. process start → /health-check READY;
4. (ours only) the chunked-body parser: a 1 MiB body sent as 1-byte chunks against a 256 KiB one, as a ratio;
   a linear parser gives about 4x (within 2x of linear: under 8x), a quadratic one about 16x.
The cog venv is created with ``uv`` (``cog==0.23.1``) when missing; ``--chunked-only`` runs just 4 without it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import pathlib
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
RUNNER = ROOT / "layers" / "runner"

SYNC_PREDICTOR = """
from cog import BasePredictor, Input

class Predictor(BasePredictor):
    def predict(self, text: str = Input(default="world")) -> str:
        return "hello " + text
"""
ASYNC_PREDICTOR = """
import asyncio
from cog import BasePredictor, Input

class Predictor(BasePredictor):
    async def predict(self, text: str = Input(default="world")) -> str:
        await asyncio.sleep(0.002)
        return "hello " + text
"""
SCHEMA = {
    "openapi": "3.0.2",
    "info": {"title": "Cog", "version": "0.1.0"},
    "paths": {"/predictions": {"post": {}}},
    "components": {
        "schemas": {
            "Input": {
                "title": "Input",
                "type": "object",
                "properties": {"text": {"title": "Text", "type": "string", "default": "world", "x-order": 0}},
            },
            "Output": {"title": "Output", "type": "string"},
        }
    },
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def project(directory: pathlib.Path, source: str) -> pathlib.Path:
    (directory / ".cog").mkdir(parents=True)
    (directory / "predict.py").write_text(source)
    (directory / ".cog" / "openapi_schema.json").write_text(json.dumps(SCHEMA))
    return directory


class Server:
    def __init__(self, kind: str, cwd: pathlib.Path, cog_venv: pathlib.Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("COG_", "PYTHONPATH"))}
        full_env.update(PORT=str(self.port), COG_PREDICT_TYPE_STUB="predict.py:Predictor", **(env or {}))
        if kind == "ours":
            python = sys.executable
            full_env["PYTHONPATH"] = str(RUNNER)
        else:
            python = str(cog_venv / "bin" / "python")
            full_env["PATH"] = f"{cog_venv / 'bin'}{os.pathsep}{full_env['PATH']}"
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [python, "-m", "cog.server.http", "--host", "127.0.0.1"],
            cwd=cwd,
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.ready_after = self._wait_ready()

    def _wait_ready(self) -> float:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", "/health-check")
                status = json.loads(connection.getresponse().read())["status"]
                connection.close()
                if status == "READY":
                    return time.perf_counter() - self.started
            except (OSError, ValueError, http.client.HTTPException):
                pass
            time.sleep(0.005)
        raise RuntimeError("server did not become READY")

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


BODY = json.dumps({"input": {"text": "bench"}})
HEADERS = {"Content-Type": "application/json"}


def predict(connection: http.client.HTTPConnection) -> int:
    connection.request("POST", "/predictions", BODY, HEADERS)
    response = connection.getresponse()
    response.read()
    return response.status


def sequential(port: int, requests: int) -> dict[str, float]:
    connection = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(50):
        predict(connection)
    latencies, conflicts = [], 0
    while len(latencies) < requests:
        started = time.perf_counter()
        status = predict(connection)
        elapsed = time.perf_counter() - started
        if status == 409:
            conflicts += 1
            continue
        latencies.append(elapsed)
    connection.close()
    latencies.sort()
    return {
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1e3,
        "409s": conflicts,
    }


def concurrent(port: int, clients: int, seconds: float) -> dict[str, float]:
    counts = [0] * clients
    conflicts = [0] * clients
    stop = time.perf_counter() + seconds

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port)
        while time.perf_counter() < stop:
            if predict(connection) == 200:
                counts[index] += 1
            else:
                conflicts[index] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"throughput_rps": sum(counts) / seconds, "409s": sum(conflicts)}


def chunked_upload(port: int, size: int) -> float:
    """Seconds to POST a `size`-byte prediction request in 1-byte chunks and read the whole answer."""
    envelope = b'{"input":{"text":"bench"},"pad":"'
    body = envelope + b"x" * (size - len(envelope) - 2) + b'"}'
    head = (
        b"POST /predictions HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    stream = head + b"".join(b"1\r\n%c\r\n" % byte for byte in body) + b"0\r\n\r\n"
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=600) as sock:
        sock.sendall(stream)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    elapsed = time.perf_counter() - started
    if not answer.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"chunked upload failed: {answer[:200]!r}")
    return elapsed


def chunked_linearity(directory: pathlib.Path, venv: pathlib.Path, repeats: int = 3) -> dict[str, float]:
    """Best-of-`repeats` times for 256 KiB and 1 MiB of 1-byte chunks, and their ratio (linear: ~4x)."""
    server = Server("ours", directory, venv)
    try:
        small = min(chunked_upload(server.port, 256 * 1024) for _ in range(repeats))
        large = min(chunked_upload(server.port, 1024 * 1024) for _ in range(repeats))
    finally:
        server.stop()
    return {"chunked_256k_s": small, "chunked_1m_s": large, "ratio_1m_to_256k": large / small}


def ensure_cog_venv(venv: pathlib.Path) -> None:
    if (venv / "bin" / "python").exists():
        return
    uv = shutil.which("uv") or str(pathlib.Path(sys.executable).parent / "uv")
    subprocess.run([uv, "venv", "-q", "-p", "3.11", str(venv)], check=True)
    subprocess.run([uv, "pip", "install", "-q", "-p", str(venv / "bin" / "python"), "cog==0.23.1"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cog-venv", type=pathlib.Path, default=pathlib.Path("~/.cache/ocibuild-test/cog-venv"))
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--chunked-only", action="store_true", help="only the chunked-parser linearity ratio")
    arguments = parser.parse_args()
    venv = arguments.cog_venv.expanduser()
    with tempfile.TemporaryDirectory() as scratch:
        linearity = chunked_linearity(project(pathlib.Path(scratch) / "chunked", SYNC_PREDICTOR), venv)
    print("chunked parser: " + ", ".join(f"{name} {value:.3f}" for name, value in linearity.items()))
    if arguments.chunked_only:
        return
    ensure_cog_venv(venv)
    results: dict[str, dict[str, float]] = {"ours": {}, "coglet": {}}
    with tempfile.TemporaryDirectory() as scratch:
        sync_dir = project(pathlib.Path(scratch) / "sync", SYNC_PREDICTOR)
        async_dir = project(pathlib.Path(scratch) / "async", ASYNC_PREDICTOR)
        for kind in ("ours", "coglet"):
            starts = []
            for _ in range(arguments.starts):
                server = Server(kind, sync_dir, venv)
                starts.append(server.ready_after)
                server.stop()
            results[kind]["start_to_ready_s"] = statistics.median(starts)
            server = Server(kind, sync_dir, venv)
            results[kind].update(sequential(server.port, arguments.requests))
            server.stop()
            server = Server(kind, async_dir, venv, {"COG_MAX_CONCURRENCY": "8"})
            concurrent_result = concurrent(server.port, 8, arguments.seconds)
            results[kind]["throughput_rps"] = concurrent_result["throughput_rps"]
            results[kind]["async_409s"] = concurrent_result["409s"]
            server.stop()
    print(f"{'metric':<20}{'ours':>12}{'coglet':>12}{'ours/coglet':>14}")
    for metric in ("p50_ms", "p99_ms", "409s", "throughput_rps", "async_409s", "start_to_ready_s"):
        ours, theirs = results["ours"][metric], results["coglet"][metric]
        ratio = f"{ours / theirs:.2f}x" if theirs else "-"
        print(f"{metric:<20}{ours:>12.3f}{theirs:>12.3f}{ratio:>14}")
    print(json.dumps({**results, "chunked": linearity}))


if __name__ == "__main__":
    main()
