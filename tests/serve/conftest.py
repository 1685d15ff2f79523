"""Fixtures for ``ocibuild serve``: a runner started directly (no image) behind the playground proxy."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ocibuild.serve.proxy import Proxy
from tests.runner.harness import Client, Server

sys.dont_write_bytecode = True

PREDICTORS = Path(__file__).resolve().parent / "predictors"


@dataclass
class Served:
    runner: Server
    proxy: Proxy

    @property
    def url(self) -> str:
        return self.proxy.url

    @property
    def client(self) -> Client:
        return Client(self.proxy.port)


def fixture_dir(name: str) -> str:
    """A predictor of this suite (``predictors/NAME``) or of the runner's suite (a bare name)."""
    own = PREDICTORS / name
    return str(own) if own.is_dir() else name


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    """``serve(fixture)``: a READY runner for the fixture and a started proxy with the playground in front."""
    started: list[Served] = []

    def start(fixture: str, *, playground: bool = True, title: str = "test model", **options: object) -> Served:
        runner = Server(fixture_dir(fixture), **options)  # type: ignore[arg-type]
        try:
            runner.wait_until("READY")
            proxy = Proxy(runner.port, "127.0.0.1", 0, playground=playground, title=title).start()
        except BaseException:
            runner.stop()
            raise
        served = Served(runner, proxy)
        started.append(served)
        return served

    yield start
    for served in started:
        served.proxy.close()
        served.runner.stop()
