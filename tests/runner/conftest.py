"""Fixtures for the runner's black-box tests."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

import pytest

from tests.runner.harness import Receiver, Server

sys.dont_write_bytecode = True


@pytest.fixture
def start_server() -> Iterator[Callable[..., Server]]:
    """Start servers (stopped at the end of the test); each call returns a server already past STARTING."""
    servers: list[Server] = []

    def start(fixture: str, *, wait: tuple[str, ...] = ("READY",), **options: object) -> Server:
        server = Server(fixture, **options)  # type: ignore[arg-type]
        servers.append(server)
        if wait:
            server.wait_until(*wait)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def echo() -> Iterator[Server]:
    """One shared server for the echo predictor (tests must leave it idle)."""
    server = Server("echo")
    server.wait_until("READY")
    yield server
    server.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()
