"""A hostile registry cannot exhaust memory or hold a pull for ever: answers are read up to their limit only,
and every call (a blob download included) has a wall-clock deadline, whatever trickles in."""

from __future__ import annotations

import hashlib
import json
import socketserver
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocibuild.errors import BuildError, UserInputError
from ocibuild.registry import Recorder
from ocibuild.registry.client import MAX_MANIFEST
from ocibuild.registry.deadline import Limits
from ocibuild.registry.pull_image import pull

CONFIG = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + hashlib.sha256(CONFIG).hexdigest(),
            "size": len(CONFIG),
        },
        "layers": [],
    }
).encode()
TRICKLE_S = 0.2
"""One byte every 0.2 s: each read gets data long before any socket timeout, so only a deadline ends it."""


class HostileRegistry(socketserver.ThreadingTCPServer):
    """Answers by repository name: ``huge`` streams an endless manifest (``huge-declared`` announces 1.5 GB),
    ``slow-head`` trickles its status line, ``slow-body`` its manifest, ``slow-blob`` its config blob."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.sent = 0
        self.stop = threading.Event()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _Handler(socketserver.BaseRequestHandler):
    server: HostileRegistry

    def handle(self) -> None:
        reader = self.request.makefile("rb")
        try:
            while True:
                line = reader.readline()
                if not line:
                    return
                while reader.readline() not in (b"\r\n", b"\n", b""):
                    pass
                self.answer(line.split()[1].decode())
        except OSError:
            return

    def send(self, data: bytes) -> None:
        self.request.sendall(data)
        self.server.sent += len(data)

    def trickle(self, data: bytes) -> None:
        for byte in data:
            if self.server.stop.wait(TRICKLE_S):
                return
            self.send(bytes([byte]))

    def answer(self, path: str) -> None:
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n"
        if path == "/v2/":
            self.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        elif path.startswith("/v2/huge/"):
            self.send(f"{head}Connection: close\r\n\r\n".encode())
            while not self.server.stop.is_set():
                self.send(b" " * 65536)  # an endless JSON whitespace prefix
        elif path.startswith("/v2/huge-declared/"):
            self.send(f"{head}Content-Length: {1_500_000_000}\r\n\r\n".encode())
            while not self.server.stop.is_set():
                self.send(b" " * 65536)
        elif path.startswith("/v2/slow-head/"):
            self.trickle(f"{head}Content-Length: {len(MANIFEST)}\r\n\r\n".encode())
        elif path.startswith("/v2/slow-body/"):
            self.send(f"{head}Content-Length: {len(MANIFEST)}\r\n\r\n".encode())
            self.trickle(MANIFEST)
        elif path.startswith("/v2/slow-blob/manifests/"):
            self.send(f"{head}Content-Length: {len(MANIFEST)}\r\n\r\n".encode() + MANIFEST)
        elif path.startswith("/v2/slow-blob/blobs/"):
            self.send(f"HTTP/1.1 200 OK\r\nContent-Length: {len(CONFIG)}\r\n\r\n".encode())
            self.trickle(CONFIG)
        else:
            self.send(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")


@pytest.fixture
def hostile() -> Iterator[HostileRegistry]:
    server = HostileRegistry()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.stop.set()
    server.shutdown()
    server.server_close()


def pull_from(server: HostileRegistry, repository: str, out: Path, deadline: float = 60.0) -> None:
    pull(f"{server.host}/{repository}:latest", out, progress=Recorder(), limits=Limits(deadline=deadline))


@pytest.mark.parametrize("repository", ["huge", "huge-declared"])
def test_an_endless_manifest_is_read_up_to_its_limit_only(hostile: HostileRegistry, tmp_path: Path, repository):
    tracemalloc.start()
    try:
        with pytest.raises(BuildError) as caught:
            pull_from(hostile, repository, tmp_path / "out")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    assert "\n" not in message and hostile.host in message and "get manifest latest" in message
    assert "allowed" in message
    assert peak < 3 * MAX_MANIFEST, f"peak {peak} bytes"
    time.sleep(0.2)
    assert hostile.sent < 16 * MAX_MANIFEST, "the client stopped reading (kernel buffers hold the rest)"


@pytest.mark.parametrize(
    ("repository", "what"),
    [("slow-head", "get manifest latest"), ("slow-body", "get manifest latest"), ("slow-blob", "download blob")],
)
def test_a_trickling_registry_meets_a_deadline(hostile: HostileRegistry, tmp_path: Path, repository, what) -> None:
    started = time.monotonic()
    with pytest.raises(BuildError) as caught:
        pull_from(hostile, repository, tmp_path / "out", deadline=1.0)
    elapsed = time.monotonic() - started
    message = str(caught.value)
    assert "\n" not in message and hostile.host in message and what in message, message
    assert "within 1 s (the registry is too slow)" in message
    assert elapsed < 5, f"took {elapsed:.1f} s"


def test_the_deadline_can_be_set_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCIBUILD_REGISTRY_DEADLINE", "2.5")
    assert Limits.from_env().deadline == 2.5
    assert Limits.from_env().seconds_for(512 * 1024) == 2.5 + 2
    for wrong in ("soon", "0", "nan", "inf"):
        monkeypatch.setenv("OCIBUILD_REGISTRY_DEADLINE", wrong)
        with pytest.raises(UserInputError, match=f"OCIBUILD_REGISTRY_DEADLINE={wrong}: expected a number"):
            Limits.from_env()
