"""Server side: start the worker process, feed it predictions, and track its health and slots."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import itertools
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cog import gpucheck
from cog.server import log
from cog.server.predictions import Prediction
from cog.server.protocol import FrameDecoder, Job, encode

HEALTHCHECK_TIMEOUT_S = 5.0


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


@dataclass
class Setup:
    """What ``/health-check`` reports under ``setup``."""

    started_at: str = field(default_factory=_now)
    completed_at: str | None = None
    status: str = "starting"
    logs: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"started_at": self.started_at}
        if self.completed_at is not None:
            body["completed_at"] = self.completed_at
        body.update(status=self.status, logs="".join(self.logs))
        return body


class _PipeReader(asyncio.Protocol):
    def __init__(self, on_data: Callable[[bytes], None], on_close: Callable[[], None]) -> None:
        self.on_data = on_data
        self.on_close = on_close

    def data_received(self, data: bytes) -> None:
        self.on_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.on_close()


class Supervisor:
    """Owns the single worker process. States: STARTING → READY | SETUP_FAILED; READY → DEFUNCT on crash."""

    def __init__(self, slots: int, mode: str, upload_url: str | None, setup_timeout: float | None) -> None:
        self.slots = slots
        self.mode = mode
        self.upload_url = upload_url
        self.setup_timeout = setup_timeout
        self.state = "STARTING"
        self.setup = Setup()
        self.info: dict[str, Any] = {}
        self.gpu_check: dict[str, Any] | None = None
        """The setup-time GPU compatibility report (``cog.gpucheck``); None without a GPU."""
        self.active: dict[str, Prediction] = {}
        self.ready = asyncio.get_running_loop().create_future()
        self._process: subprocess.Popen[bytes] | None = None
        self._to_worker: asyncio.WriteTransport | None = None
        self._decoder = FrameDecoder()
        self._health_tokens = itertools.count()
        self._health_waiters: dict[int, asyncio.Future[str | None]] = {}

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def busy(self) -> bool:
        return len(self.active) >= self.slots

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        env = dict(os.environ, COG_RUNNER_MODE=self.mode, COG_RUNNER_UPLOAD_URL=self.upload_url or "")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_package_root(), env.get("PYTHONPATH")]))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "cog.server.worker", str(to_worker_r), str(from_worker_w)],
            pass_fds=(to_worker_r, from_worker_w),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        os.close(to_worker_r)
        os.close(from_worker_w)
        self._to_worker, _ = await loop.connect_write_pipe(asyncio.BaseProtocol, os.fdopen(to_worker_w, "wb"))
        await loop.connect_read_pipe(
            lambda: _PipeReader(self._on_frames, self._on_worker_gone), os.fdopen(from_worker_r, "rb")
        )
        for stream, source in ((self._process.stdout, "stdout"), (self._process.stderr, "stderr")):
            await loop.connect_read_pipe(
                lambda source=source: _PipeReader(lambda data: self._on_raw_output(source, data), lambda: None),
                stream,
            )
        if self.setup_timeout:
            loop.call_later(self.setup_timeout, self._on_setup_timeout)
        loop.run_in_executor(None, self._check_gpu)

    def _check_gpu(self) -> None:
        """Say at setup when the GPU present has no kernels in the image's CUDA build or too old a driver."""
        report = gpucheck.run_check()
        self.gpu_check = report
        if report is None:
            return
        for problem in report["problems"]:
            self.setup.logs.append(f"GPU check: {problem}\n")
            log.warning("GPU check", problem=problem)
        if not report["problems"]:
            log.info("GPU check", status="ok", cuda=report["cuda"], gpus=len(report["devices"]))

    def stop(self) -> None:
        """Ask the worker to exit; kill it if it is still there shortly after."""
        if self._process is None or self._process.returncode is not None:
            return
        self._send("shutdown")
        asyncio.get_running_loop().call_later(2.0, self.kill)

    def kill(self) -> None:
        if self._process is not None and self.state != "DEFUNCT":
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()

    # -- sending -----------------------------------------------------------------------------------
    def _send(self, *message: Any) -> None:
        if self._to_worker is not None and not self._to_worker.is_closing():
            self._to_worker.write(encode(message))

    def submit(self, prediction: Prediction) -> None:
        """Start a prediction; the caller has checked that a slot is free."""
        self.active[prediction.id] = prediction
        request = prediction.request
        self._send("predict", Job(request.id, request.input, request.context, request.training))
        prediction.mark_processing()

    def cancel(self, prediction_id: str) -> bool:
        """Cancel an active prediction; once acknowledged, it ends ``canceled`` whatever the worker reports."""
        prediction = self.active.get(prediction_id)
        if prediction is None:
            return False
        prediction.cancel_requested = True
        self._send("cancel", prediction_id)
        return True

    async def user_healthcheck(self) -> str | None:
        """Run the model's ``healthcheck()``; returns an error message, or ``None`` when healthy."""
        if not self.info.get("has_healthcheck"):
            return None
        token = next(self._health_tokens)
        waiter = asyncio.get_running_loop().create_future()
        self._health_waiters[token] = waiter
        self._send("healthcheck", token)
        try:
            return await asyncio.wait_for(waiter, HEALTHCHECK_TIMEOUT_S)
        except asyncio.TimeoutError:
            return f"Healthcheck failed: timed out after {HEALTHCHECK_TIMEOUT_S:g}s"
        finally:
            self._health_waiters.pop(token, None)

    # -- receiving ---------------------------------------------------------------------------------
    def _on_frames(self, data: bytes) -> None:
        for message in self._decoder.feed(data):
            getattr(self, "_on_" + message[0])(*message[1:])

    def _on_ready(self, info: dict[str, Any]) -> None:
        self.info = info
        self._setup_done("READY", "succeeded")
        log.info("setup complete", seconds=round(info.get("setup_time", 0), 3))

    def _on_setup_failed(self, error: str) -> None:
        self.setup.logs.append(error + "\n")
        self._setup_done("SETUP_FAILED", "failed")
        log.error("setup failed", error=error)

    def _setup_done(self, state: str, status: str) -> None:
        if self.state != "STARTING":
            return
        self.state = state
        self.setup.status = status
        self.setup.completed_at = _now()
        if not self.ready.done():
            self.ready.set_result(state)

    def _on_setup_timeout(self) -> None:
        if self.state == "STARTING":
            self._on_setup_failed(f"Setup timed out after {self.setup_timeout:g}s (COG_SETUP_TIMEOUT)")
            self.kill()

    def _on_log(self, prediction_id: str | None, source: str, text: str) -> None:
        prediction = self.active.get(prediction_id) if prediction_id else None
        if prediction is not None:
            prediction.add_log(source, text)
        else:
            if self.state == "STARTING":
                self.setup.logs.append(text)
            log.user_output(source, text)

    def _on_raw_output(self, source: str, data: bytes) -> None:
        """Output written straight to the worker's file descriptors (C code, subprocesses)."""
        text = data.decode("utf-8", "replace")
        if len(self.active) == 1:
            next(iter(self.active.values())).add_log(source, text)
        else:
            self._on_log(None, source, text)

    def _on_metric(self, prediction_id: str, name: str, value: Any, mode: str) -> None:
        if prediction_id in self.active:
            self.active[prediction_id].add_metric(name, value, mode)

    def _on_output(self, prediction_id: str, chunk: Any) -> None:
        if prediction_id in self.active:
            self.active[prediction_id].add_chunk(chunk)

    def _on_done(self, prediction_id: str, result: Any) -> None:
        prediction = self.active.pop(prediction_id, None)
        if prediction is not None and prediction.cancel_requested:
            prediction.finish("canceled")
        elif prediction is not None:
            error = f"Prediction failed: {result.error}" if result.status == "failed" else result.error
            prediction.finish(result.status, result.output, error, result.detail)

    def _on_health(self, token: int, error: str | None) -> None:
        waiter = self._health_waiters.get(token)
        if waiter is not None and not waiter.done():
            waiter.set_result(error)

    def _on_worker_gone(self) -> None:
        """The worker's pipe closed: it exited or crashed. In-flight predictions fail; the server stays up."""
        if self.state == "STARTING":
            self._on_setup_failed("Setup failed: worker exited during setup")
        elif self.state == "READY":
            self.state = "DEFUNCT"
            log.error("worker exited unexpectedly; runner is DEFUNCT")
        for prediction in list(self.active.values()):
            prediction.finish("failed", error="Worker crashed")
        self.active.clear()
        for waiter in self._health_waiters.values():
            if not waiter.done():
                waiter.set_result("Healthcheck failed: worker is not running")


def _package_root() -> str:
    """The directory that holds the ``cog`` package, so the worker imports this same copy."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def reap_children() -> list[tuple[int, int]]:
    """Collect every exited child (needed when running as PID 1); returns (pid, status) pairs."""
    reaped = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        reaped.append((pid, status))
