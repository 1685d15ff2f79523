"""Process behaviour: signals, /shutdown, flags, environment, child reaping."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.runner.harness import RUNNER_ROOT, Client


def test_missing_predictor_env_exits_1(tmp_path):
    env = {"PYTHONPATH": str(RUNNER_ROOT), "PATH": os.environ["PATH"]}
    result = subprocess.run(
        [sys.executable, "-m", "cog.server.http"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    assert "COG_PREDICT_TYPE_STUB" in result.stderr


def test_version_flag():
    result = subprocess.run(
        [sys.executable, "-m", "cog.server.http", "--version"],
        env={"PYTHONPATH": str(RUNNER_ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0
    assert "cog-runner" in result.stdout


def test_shutdown_route_exits_cleanly(start_server):
    server = start_server("echo")
    assert server.client.post("/shutdown").json == {}
    assert server.process.wait(10) == 0


def test_sigterm_drains_the_running_prediction_then_exits(start_server):
    server = start_server("echo")
    result = {}
    thread = threading.Thread(
        target=lambda: result.setdefault(
            "r", Client(server.port).predict({"prompt": "a", "mode": "slow", "scale": 0.5})
        )
    )
    thread.start()
    _wait_busy(server)  # the prediction holds the slot: SIGTERM must let it finish
    server.signal(signal.SIGTERM)
    thread.join(10)
    assert result["r"].json["status"] == "succeeded"
    assert server.process.wait(10) == 0


def test_await_explicit_shutdown_ignores_sigterm(start_server):
    server = start_server("echo", args=("--await-explicit-shutdown", "true"))
    server.signal(signal.SIGTERM)
    time.sleep(0.3)
    assert server.process.poll() is None
    assert server.client.get("/health-check").json["status"] == "READY"
    server.client.post("/shutdown")
    assert server.process.wait(10) == 0


def test_worker_exits_with_the_server(start_server):
    server = start_server("echo")
    children = _children(server.process.pid)
    assert children
    server.signal(signal.SIGINT)
    assert server.process.wait(10) == 0
    deadline = time.monotonic() + 5
    while any(_state(pid) not in ("Z", "gone") for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_state(pid) in ("Z", "gone") for pid in children)


def test_kubernetes_ready_file(start_server, tmp_path):
    ready = tmp_path / "run" / "ready"
    start_server("echo", env={"KUBERNETES_SERVICE_HOST": "10.0.0.1", "COG_RUNNER_READY_FILE": str(ready)})
    deadline = time.monotonic() + 5
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ready.exists()


def test_console_log_format(start_server):
    server = start_server("echo", env={"LOG_FORMAT": "console", "COG_LOG_LEVEL": "info"})
    assert "listening" in server.log
    assert not server.log.lstrip().startswith("{")


@pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0, reason="needs root and unshare")
def test_reaps_orphans_as_pid_1(tmp_path):
    """In a PID namespace the runner is PID 1: grandchildren orphaned by the model must not stay zombies."""
    (tmp_path / "predict.py").write_text(
        "import subprocess\nfrom cog import BasePredictor\n\nclass Predictor(BasePredictor):\n"
        "    def predict(self) -> str:\n"
        "        subprocess.run(['sh', '-c', 'sleep 0.1 &'])\n"
        "        return 'spawned'\n"
    )
    from tests.runner.harness import free_port

    port = free_port()
    env = {
        "PYTHONPATH": str(RUNNER_ROOT),
        "PATH": os.environ["PATH"],
        "PORT": str(port),
        "COG_PREDICT_TYPE_STUB": "predict.py:Predictor",
    }
    process = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--kill-child", sys.executable, "-m", "cog.server.http", "--host", "127.0.0.1"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = Client(port)
        deadline = time.monotonic() + 20
        while True:
            try:
                if client.get("/health-check").json["status"] == "READY":
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.05)
        for _ in range(5):
            assert client.predict({}).json["output"] == "spawned"
        time.sleep(1.0)
        runner = _children(process.pid)[0]
        zombies = [pid for pid in _descendants(runner) if _state(pid) == "Z"]
        assert zombies == []
    finally:
        process.kill()
        process.wait(10)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(child) for child in handle.read().split()]
    except FileNotFoundError:
        return []


def _descendants(pid: int) -> list[int]:
    found = []
    for child in _children(pid):
        found += [child, *_descendants(child)]
    return found


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


def test_stopping_a_server_in_setup_leaves_no_worker(start_server, tmp_path):
    """The harness ends the server's whole process group: a worker still in a long setup() dies with it."""
    (tmp_path / "predict.py").write_text(
        "import time\nfrom cog import BasePredictor\n\n\nclass Predictor(BasePredictor):\n"
        "    def setup(self):\n        time.sleep(120)\n\n    def predict(self) -> str:\n        return 'x'\n"
    )
    server = start_server(str(tmp_path), wait=("STARTING",))
    workers = _children(server.process.pid)
    deadline = time.monotonic() + 10
    while not workers and time.monotonic() < deadline:
        time.sleep(0.02)
        workers = _children(server.process.pid)
    assert workers, "the server started no worker"
    server.stop()
    for pid in workers:
        assert _state(pid) in ("gone", "Z"), f"worker {pid} outlived its server"


def _wait_busy(server, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while server.client.get("/health-check").json["status"] != "BUSY":
        assert time.monotonic() < deadline, "the prediction never started"
        time.sleep(0.02)
