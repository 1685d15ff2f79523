"""``python -m cog.server.http``: serve a Cog model over HTTP with Cog's flags and environment.

Port from ``PORT`` (default 5000); the model from ``COG_PREDICT_TYPE_STUB`` (``--x-mode train``:
``COG_TRAIN_TYPE_STUB``); ``COG_MAX_CONCURRENCY`` slots; ``COG_SETUP_TIMEOUT`` seconds. See docs/runner.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import signal
import sys

from cog import RUNNER_VERSION, __version__
from cog.server import log
from cog.server.app import Application, Schema
from cog.server.httpcore import Limits, serve
from cog.server.supervisor import Supervisor, reap_children

SCHEMA_PATH = pathlib.Path(".cog/openapi_schema.json")
KUBERNETES_READY_FILE = "/var/run/cog/ready"
DRAIN_POLL_S = 0.05


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m cog.server.http", description="Cog-compatible model server")
    parser.add_argument("-v", "--version", action="store_true", help="show the version and exit")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    parser.add_argument(
        "--await-explicit-shutdown",
        type=_truthy,
        default=False,
        help="ignore SIGTERM; exit on POST /shutdown or SIGINT",
    )
    parser.add_argument("--x-mode", choices=("predict", "train"), default="predict", help="serve run() or train()")
    parser.add_argument("--upload-url", default=None, help="PUT file outputs to this URL prefix")
    parser.add_argument("--threads", type=int, default=None, help="accepted for compatibility; ignored")
    return parser.parse_args(argv)


def load_schema() -> Schema:
    try:
        return Schema(json.loads(SCHEMA_PATH.read_text()))
    except FileNotFoundError:
        log.warning("no .cog/openapi_schema.json: inputs are not validated")
    except ValueError as exc:
        log.error("unreadable .cog/openapi_schema.json: inputs are not validated", error=str(exc))
    return Schema(None)


def _setup_timeout() -> float | None:
    value = os.environ.get("COG_SETUP_TIMEOUT", "")
    return float(value) if value else None


def _limits() -> Limits:
    """Client limits; ``COG_RUNNER_HEADER_TIMEOUT``, ``COG_RUNNER_IDLE_TIMEOUT`` (seconds) and
    ``COG_RUNNER_MAX_CONNECTIONS`` override the defaults (an ocibuild extension)."""
    default = Limits()
    return Limits(
        header_timeout=float(os.environ.get("COG_RUNNER_HEADER_TIMEOUT") or default.header_timeout),
        idle_timeout=float(os.environ.get("COG_RUNNER_IDLE_TIMEOUT") or default.idle_timeout),
        max_connections=int(os.environ.get("COG_RUNNER_MAX_CONNECTIONS") or default.max_connections),
    )


class Server:
    """Ties the HTTP listener, the worker supervisor and process signals together."""

    def __init__(self, arguments: argparse.Namespace) -> None:
        self.arguments = arguments
        self.stopping = asyncio.get_running_loop().create_future()

    async def run(self) -> None:
        arguments = self.arguments
        slots = max(1, int(os.environ.get("COG_MAX_CONCURRENCY") or 1))
        supervisor = Supervisor(slots, arguments.x_mode, arguments.upload_url, _setup_timeout())
        app = Application(supervisor, load_schema(), self.request_stop)
        port = int(os.environ.get("PORT", "5000"))
        listener, connections = await serve(app.handle, arguments.host, port, _limits())
        log.info("listening", host=arguments.host, port=port, runner=RUNNER_VERSION)
        self._install_signals(arguments.await_explicit_shutdown)
        await supervisor.start()
        asyncio.get_running_loop().create_task(self._announce_ready(supervisor))
        await self.stopping
        app.draining = True
        while supervisor.active:
            await asyncio.sleep(DRAIN_POLL_S)
        listener.close()
        for connection in list(connections):
            if connection.idle:
                connection.close()
        supervisor.stop()
        await asyncio.sleep(0)
        log.info("stopped")

    def request_stop(self) -> None:
        if not self.stopping.done():
            self.stopping.set_result(None)

    def _install_signals(self, await_explicit_shutdown: bool) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self.request_stop)
        if await_explicit_shutdown:
            loop.add_signal_handler(signal.SIGTERM, lambda: log.info("ignoring SIGTERM (--await-explicit-shutdown)"))
        else:
            loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        loop.add_signal_handler(signal.SIGCHLD, reap_children)

    async def _announce_ready(self, supervisor: Supervisor) -> None:
        if await supervisor.ready == "READY" and os.environ.get("KUBERNETES_SERVICE_HOST"):
            ready_file = pathlib.Path(os.environ.get("COG_RUNNER_READY_FILE", KUBERNETES_READY_FILE))
            ready_file.parent.mkdir(parents=True, exist_ok=True)
            ready_file.touch()


async def _main(arguments: argparse.Namespace) -> None:
    await Server(arguments).run()


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    if arguments.version:
        print(f"cog-runner {RUNNER_VERSION} (Cog SDK {__version__})")
        return 0
    stub = "COG_TRAIN_TYPE_STUB" if arguments.x_mode == "train" else "COG_PREDICT_TYPE_STUB"
    if not os.environ.get(stub):
        print(f"ERROR: {stub} environment variable is not set (e.g. {stub}=predict.py:Predictor).", file=sys.stderr)
        return 1
    asyncio.run(_main(arguments))
    return 0


if __name__ == "__main__":
    sys.exit(main())
