"""The worker process: imports user code, runs ``setup()`` and predictions, and reports over a pipe.

Started by the server as ``python -m cog.server.worker READ_FD WRITE_FD``; configured by ``COG_RUNNER_*``
variables the server sets. User code never runs in the server process, so a crash here cannot take the
server down with it.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import pathlib
import queue
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from cog import scope as scopes
from cog.errors import CancelationException
from cog.predictor import entry_point, load_ref
from cog.server.capture import Attribution, LineStream, current_prediction
from cog.server.inputs import InputError, Signature, build_arguments, needs_download
from cog.server.outputs import FileEncoder, is_file_like, to_json
from cog.server.protocol import Job, PipeChannel, Result


@dataclass
class Handler:
    """A user entry point and how to call it."""

    fn: Any
    signature: Signature
    is_async: bool
    streaming: bool

    @classmethod
    def of(cls, fn: Any) -> Handler:
        is_async = inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)
        return cls(fn, Signature.of(fn), is_async, bool(getattr(fn, "__cog_streaming__", False)))


_END = object()
"""Marks the end of a sync generator's output."""


@dataclass
class Running:
    """Book-keeping of the predictions in flight in this worker."""

    ids: dict[str, asyncio.Task[Any] | None] = field(default_factory=dict)
    cancel_requested: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def started(self, job_id: str, task: asyncio.Task[Any] | None = None) -> None:
        with self.lock:
            self.ids[job_id] = task
            Attribution.sole = job_id if len(self.ids) == 1 else None

    def finished(self, job_id: str) -> None:
        with self.lock:
            self.ids.pop(job_id, None)
            self.cancel_requested.discard(job_id)
            Attribution.sole = next(iter(self.ids)) if len(self.ids) == 1 else None


class Worker:
    def __init__(self, channel: PipeChannel) -> None:
        self.channel = channel
        self.encode_file = FileEncoder(os.environ.get("COG_RUNNER_UPLOAD_URL") or None)
        self.training_mode = os.environ.get("COG_RUNNER_MODE") == "train"
        self.running = Running()
        self.jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.main_thread = threading.get_ident()
        self.interruptible: str | None = None
        self.target: Any = None
        self.predict: Handler | None = None
        self.train: Handler | None = None
        self.stdout = LineStream("stdout", self._log, 1)
        self.stderr = LineStream("stderr", self._log, 2)

    # -- reporting -------------------------------------------------------------------------------
    def _log(self, owner: str | None, source: str, text: str) -> None:
        self.channel.send("log", owner, source, text)

    def _flush_logs(self, owner: str | None) -> None:
        self.stdout.flush(owner)
        self.stderr.flush(owner)

    # -- setup -----------------------------------------------------------------------------------
    def load(self) -> dict[str, Any]:
        """Import the user's code and run ``setup()``; returns what the server needs to know."""
        predict_ref = os.environ.get("COG_PREDICT_TYPE_STUB", "")
        train_ref = os.environ.get("COG_TRAIN_TYPE_STUB", "")
        if self.training_mode:
            self.target = load_ref(train_ref)
            self.train = self.predict = Handler.of(entry_point(self.target, ("train",)))
        else:
            self.target = load_ref(predict_ref)
            self.predict = Handler.of(entry_point(self.target, ("run", "predict")))
            if train_ref:
                trainer = load_ref(train_ref)
                self.train = Handler.of(entry_point(trainer, ("train",)))
                self._run_setup(trainer)
        self._run_setup(self.target)
        concurrency = int(os.environ.get("COG_MAX_CONCURRENCY") or 1)
        if concurrency > 1 and not self.predict.is_async:
            raise ValueError("COG_MAX_CONCURRENCY > 1 requires an async run()/predict()")
        return {
            "is_async": self.predict.is_async,
            "has_healthcheck": callable(getattr(self.target, "healthcheck", None)),
        }

    def _run_setup(self, target: Any) -> None:
        wait_for_managed_weights()
        setup = getattr(target, "setup", None)
        if setup is None or inspect.isroutine(target):
            return
        arguments = {}
        if "weights" in inspect.signature(setup).parameters:
            arguments["weights"] = _weights_argument()
        outcome = setup(**arguments)
        if inspect.isawaitable(outcome):
            self._loop().run_until_complete(outcome)

    def _loop(self) -> asyncio.AbstractEventLoop:
        if self.loop is None:
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
        return self.loop

    # -- control messages (reader thread) ----------------------------------------------------------
    def read_commands(self) -> None:
        """Reader thread: dispatch server messages until shutdown or until the server goes away."""
        while True:
            message = self.channel.receive()
            if message is None or message[0] == "shutdown":
                break
            kind = message[0]
            if kind == "predict":
                self._accept(message[1])
            elif kind == "cancel":
                self._cancel(message[1])
            elif kind == "healthcheck":
                threading.Thread(target=self._healthcheck, args=(message[1],), daemon=True).start()
        self._stop()
        if message is None:
            os._exit(0)

    def _accept(self, job: Job) -> None:
        with self.running.lock:  # a cancel for an earlier prediction with this id must not cancel this one
            self.running.cancel_requested.discard(job.id)
        if self.predict is not None and self.predict.is_async:
            assert self.loop is not None
            self.loop.call_soon_threadsafe(self._start_task, job)
        else:
            self.jobs.put(job)

    def _cancel(self, job_id: str) -> None:
        with self.running.lock:
            self.running.cancel_requested.add(job_id)
            if job_id not in self.running.ids:
                return
            task = self.running.ids[job_id]
        if task is not None:
            assert self.loop is not None
            self.loop.call_soon_threadsafe(task.cancel)
        else:
            signal.pthread_kill(self.main_thread, signal.SIGUSR1)

    def _on_cancel_signal(self, signum: int, frame: Any) -> None:
        """SIGUSR1 in the main thread: interrupt the sync prediction if it was canceled and is in a cancellable
        stage (downloading inputs, user code, encoding or uploading outputs).

        Takes no lock (the main thread may hold it) and raises only inside those stages, never while the worker
        does its own book-keeping; ``PipeChannel.send`` holds the signal while it writes a message.
        """
        job_id = self.interruptible
        if job_id is not None and job_id in self.running.cancel_requested:
            raise CancelationException()

    def _healthcheck(self, token: int) -> None:
        error = None
        try:
            outcome = self.target.healthcheck()
            if inspect.isawaitable(outcome):
                if self.loop is not None and self.loop.is_running():
                    outcome = asyncio.run_coroutine_threadsafe(outcome, self.loop).result()  # type: ignore[arg-type]
                else:
                    outcome = asyncio.run(outcome)  # type: ignore[arg-type]
            if outcome is False:
                error = "Healthcheck failed: user-defined healthcheck returned False"
        except Exception as exc:
            error = f"Healthcheck failed: {type(exc).__name__}: {exc}"
        self.channel.send("health", token, error)

    def _stop(self) -> None:
        if self.predict is not None and self.predict.is_async and self.loop is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
        else:
            self.jobs.put(None)

    # -- running predictions -----------------------------------------------------------------------
    def serve_sync(self) -> None:
        signal.signal(signal.SIGUSR1, self._on_cancel_signal)
        while (job := self.jobs.get()) is not None:
            try:
                self.running.started(job.id)
                result = self._run_sync(job)
            except CancelationException:
                result = Result("canceled")
            self._finish(job, result)

    def _run_sync(self, job: Job) -> Result:
        """Download inputs, run the handler and encode (or upload) its outputs; a cancel interrupts any of them."""
        handler = self._handler(job)
        with _Prediction(self, job) as prediction:
            try:
                if job.id in self.running.cancel_requested:
                    return Result("canceled")
                arguments = self._cancellable(
                    job, lambda: build_arguments(handler.signature, job.input, prediction.download_dir)
                )
                outcome = self._cancellable(job, lambda: handler.fn(**arguments))
                if inspect.isgenerator(outcome) or _is_iterator(outcome):
                    chunks, items = [], iter(outcome)
                    while (item := self._cancellable(job, lambda: next(items, _END))) is not _END:
                        chunk = self._cancellable(job, lambda: to_json(item, self.encode_file))
                        chunks.append(self._send_chunk(job, chunk))
                    return Result("succeeded", chunks)
                return Result("succeeded", self._cancellable(job, lambda: to_json(outcome, self.encode_file)))
            except CancelationException:
                return Result("canceled")
            except InputError as exc:
                return Result("failed", error=str(exc), detail=exc.detail)
            except Exception as exc:
                _print_user_traceback(exc)
                return Result("failed", error=f"{type(exc).__name__}: {exc}")

    def _cancellable(self, job: Job, call: Any) -> Any:
        """Run ``call`` with the cancel signal armed for ``job``."""
        self.interruptible = job.id
        try:
            return call()
        finally:
            self.interruptible = None

    def serve_async(self) -> None:
        loop = self._loop()
        loop.run_forever()

    def _start_task(self, job: Job) -> None:
        assert self.loop is not None
        task = self.loop.create_task(self._run_async(job))
        self.running.started(job.id, task)

    async def _run_async(self, job: Job) -> None:
        handler = self._handler(job)
        loop = asyncio.get_running_loop()
        with _Prediction(self, job) as prediction:
            try:
                if job.id in self.running.cancel_requested:
                    raise CancelationException()
                if needs_download(job.input):
                    arguments = await loop.run_in_executor(
                        None, build_arguments, handler.signature, job.input, prediction.download_dir
                    )
                else:
                    arguments = build_arguments(handler.signature, job.input, prediction.download_dir)
                outcome = handler.fn(**arguments)
                if inspect.isasyncgen(outcome):
                    chunks = []
                    async for item in outcome:
                        chunks.append(await self._async_chunk(job, item))
                    result = Result("succeeded", chunks)
                else:
                    value = await outcome if inspect.isawaitable(outcome) else outcome
                    if inspect.isgenerator(value) or _is_iterator(value):
                        result = Result("succeeded", [await self._async_chunk(job, item) for item in value])
                    else:
                        result = Result("succeeded", await self._to_json(value))
            except (asyncio.CancelledError, CancelationException):
                result = Result("canceled")
            except InputError as exc:
                result = Result("failed", error=str(exc), detail=exc.detail)
            except Exception as exc:
                _print_user_traceback(exc)
                result = Result("failed", error=f"{type(exc).__name__}: {exc}")
        self._finish(job, result)

    async def _to_json(self, value: Any) -> Any:
        """Encode an output off the event loop: reading and uploading files block, and a cancel must not wait."""
        if value is None or isinstance(value, (str, bool, int, float)):
            return value
        return await asyncio.get_running_loop().run_in_executor(None, to_json, value, self.encode_file)

    async def _async_chunk(self, job: Job, item: Any) -> Any:
        return self._send_chunk(job, await self._to_json(item))

    def _handler(self, job: Job) -> Handler:
        handler = self.train if job.training and self.train is not None else self.predict
        assert handler is not None
        return handler

    def _send_chunk(self, job: Job, chunk: Any) -> Any:
        self._flush_logs(job.id)
        self.channel.send("output", job.id, chunk)
        return chunk

    def _finish(self, job: Job, result: Result) -> None:
        """Report the result; a cancel that arrived at any stage before this point wins over it."""
        if job.id in self.running.cancel_requested:
            result = Result("canceled")
        self.running.finished(job.id)
        self._flush_logs(job.id)
        self.channel.send("done", job.id, result)


class _Prediction:
    """Context of one running prediction: scope, log attribution and a download directory."""

    def __init__(self, worker: Worker, job: Job) -> None:
        self.worker = worker
        self.job = job
        self._download_dir: pathlib.Path | None = None

    def download_dir(self) -> pathlib.Path:
        """A private directory for this prediction's downloaded inputs, created on first use."""
        if self._download_dir is None:
            self._download_dir = pathlib.Path(tempfile.mkdtemp(prefix="cog-inputs-"))
        return self._download_dir

    def __enter__(self) -> _Prediction:
        channel, job_id = self.worker.channel, self.job.id
        scope = scopes.Scope(
            self.job.context, lambda key, value, mode: channel.send("metric", job_id, key, value, mode)
        )
        self._scope_token = scopes.enter_scope(scope)
        self._log_token = current_prediction.set(job_id)
        scopes.set_sole_scope(scope if len(self.worker.running.ids) <= 1 else None)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        scopes.set_sole_scope(None)
        current_prediction.reset(self._log_token)
        scopes.leave_scope(self._scope_token)
        if self._download_dir is not None:
            shutil.rmtree(self._download_dir, ignore_errors=True)


_RUNNER_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _first_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (a one-line summary; the traceback is in the logs)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _print_user_traceback(exc: BaseException) -> None:
    """Print a traceback to the captured stderr, starting at the first frame outside the runner."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_RUNNER_DIR):
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb or exc.__traceback__)


def _is_iterator(value: Any) -> bool:
    """A returned iterator streams its items; a file object is iterable too, but it is one file output."""
    if isinstance(value, (str, bytes)) or is_file_like(value):
        return False
    return hasattr(value, "__next__") and hasattr(value, "__iter__")


def wait_for_managed_weights(poll_s: float = 0.1) -> None:
    """With Cog's managed weights (``.cog/weights.json``), wait until each ``<target>/.cog/ready`` exists.

    The serving platform mounts the weight artifacts and writes the ready marker; the wait is bounded by
    ``COG_WEIGHTS_READY_TIMEOUT`` seconds (default 600), after which setup fails naming the missing target.
    """
    manifest = pathlib.Path(".cog/weights.json")
    if not manifest.is_file():
        return
    targets = [entry["target"] for entry in json.loads(manifest.read_text()).get("weights", [])]
    deadline = time.monotonic() + float(os.environ.get("COG_WEIGHTS_READY_TIMEOUT") or 600)
    for target in targets:
        while not os.path.exists(os.path.join(target, ".cog", "ready")):
            if time.monotonic() > deadline:
                raise RuntimeError(f"managed weights are not ready: {target}/.cog/ready does not exist")
            time.sleep(poll_s)


def _weights_argument() -> Any:
    """``setup(weights=...)``: ``COG_WEIGHTS`` if set, else ``./weights`` if it exists, else ``None``."""
    from cog.types import Path

    if os.environ.get("COG_WEIGHTS"):
        return os.environ["COG_WEIGHTS"]
    return Path("weights") if os.path.exists("weights") else None


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    channel = PipeChannel(int(argv[0]), int(argv[1]))
    worker = Worker(channel)
    sys.stdout, sys.stderr = worker.stdout, worker.stderr
    started = time.monotonic()
    try:
        info = worker.load()
    except BaseException as exc:
        _print_user_traceback(exc)
        worker._flush_logs(None)
        channel.send("setup_failed", f"Setup failed: {_first_line(exc)}")
        os._exit(1)
    worker._flush_logs(None)
    info["setup_time"] = time.monotonic() - started
    channel.send("ready", info)
    threading.Thread(target=worker.read_commands, name="cog-commands", daemon=True).start()
    if info["is_async"]:
        worker.serve_async()
    else:
        worker.serve_sync()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
