"""Hostile or broken HTTP clients: strict framing answered with 4xx, slow clients timed out, connections capped.

Every test talks raw bytes over a socket with a timeout, so a server that hangs fails the test instead of CI.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time

import pytest

from tests.runner.harness import Client

HEAD = b"POST /predictions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
BODY = b'{"input":{"prompt":"hi"}}'
FAST = {"COG_RUNNER_HEADER_TIMEOUT": "0.5", "COG_RUNNER_IDLE_TIMEOUT": "1"}


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def exchange(port: int, request: bytes) -> bytes:
    with connect(port) as sock:
        sock.sendall(request)
        return answer(sock)


def chunked(*chunks: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"


def test_a_chunked_body_with_extensions_and_a_trailer_is_read(echo):
    framed = chunked(BODY[:5], BODY[5:]).replace(b"0\r\n\r\n", b"0;last\r\nX-Check: 1\r\n\r\n")
    framed = framed.replace(b"5\r\n", b"5;name=value\r\n", 1)
    reply = exchange(echo.port, HEAD + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + framed)
    assert reply.startswith(b"HTTP/1.1 200"), reply
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["output"] == "hi|1.0|False|ab|None|None"


@pytest.mark.parametrize(
    "value",
    ["１２".encode(), "²".encode("latin-1"), b"1 2", b"+12", b"0x10", b"1" * 20],
    ids=["fullwidth-digits", "superscript-two", "inner-space", "plus-sign", "hex", "twenty-digits"],
)
def test_content_length_must_be_ascii_digits(echo, value):
    reply = exchange(echo.port, HEAD + b"Content-Length: " + value + b"\r\n\r\n" + BODY)
    assert reply.startswith(b"HTTP/1.1 400"), reply
    assert reply.endswith(b"invalid Content-Length")
    assert echo.client.get("/health-check").json["status"] == "READY"


@pytest.mark.parametrize(
    ("framing", "reason"),
    [
        (b"zz\r\n", b"malformed chunk size"),
        (b"0x5\r\nhello\r\n0\r\n\r\n", b"malformed chunk size"),
        (b" 5\r\nhello\r\n0\r\n\r\n", b"malformed chunk size"),
        (b"-5\r\nhello\r\n0\r\n\r\n", b"malformed chunk size"),
        (b"5\nhello\n0\n\n", b"malformed chunk size"),
        (b"5\r\nhelloXY0\r\n\r\n", b"chunk data is not followed by CRLF"),
        (b"1" * 17 + b"\r\n", b"malformed chunk size"),
        (b"f" * 16 + b"\r\n", b"request body too large"),
        (b"5;" + b"x" * 5000 + b"\r\n", b"chunk size line too long"),
        (b"0\r\nno colon here\r\n\r\n", b"malformed header line"),
        (b"0\r\n" + (b"X-Pad: " + b"y" * 1000 + b"\r\n") * 20, b"chunked trailers too large"),
    ],
    ids=[
        "not-hex",
        "0x-prefix",
        "leading-space",
        "negative",
        "bare-lf",
        "missing-crlf-after-data",
        "seventeen-hex-digits",
        "size-over-the-body-limit",
        "endless-extension",
        "trailer-without-colon",
        "trailers-over-the-limit",
    ],
)
def test_malformed_chunk_framing_is_refused(echo, framing, reason):
    reply = exchange(echo.port, HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + framing)
    assert reply.startswith((b"HTTP/1.1 400", b"HTTP/1.1 413")), reply
    assert reason in reply.split(b"\r\n\r\n", 1)[1]
    assert echo.client.get("/health-check").json["status"] == "READY"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        (b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"both Transfer-Encoding and Content-Length"),
        (b"Transfer-Encoding: gzip, chunked\r\n", b"unsupported Transfer-Encoding"),
        (b"Content-Length: 5\r\nContent-Length: 5\r\n", b"repeated content-length header"),
        (b"Content-Length : 5\r\n", b"malformed header line"),
        (b"No colon\r\n", b"malformed header line"),
        (b" folded: line\r\n", b"malformed header line"),
    ],
    ids=["te-and-cl", "other-coding", "repeated-length", "space-before-colon", "no-colon", "obsolete-folding"],
)
def test_ambiguous_headers_are_refused(echo, headers, reason):
    reply = exchange(echo.port, HEAD + headers + b"\r\nhello")
    assert reply.startswith(b"HTTP/1.1 400"), reply
    assert reason in reply


def test_a_half_sent_head_gets_408_after_the_header_timeout(start_server):
    server = start_server("echo", env=FAST)
    with connect(server.port) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /predictions HTTP/1.1\r\nHost: x\r\n")
        for _ in range(3):  # trickling more header bytes does not extend the header deadline
            time.sleep(0.2)
            sock.sendall(b"X-Slow: 1\r\n")
        reply = answer(sock)
    assert reply.startswith(b"HTTP/1.1 408"), reply
    assert time.monotonic() - started < 5


def test_a_stalled_body_gets_408_after_the_idle_timeout(start_server):
    server = start_server("echo", env=FAST)
    with connect(server.port) as sock:
        sock.sendall(HEAD + b"Content-Length: 100\r\n\r\n" + BODY[:10])
        assert answer(sock).startswith(b"HTTP/1.1 408")


def test_an_idle_keep_alive_connection_is_closed_quietly(start_server):
    server = start_server("echo", env=FAST)
    with connect(server.port) as sock:
        sock.sendall(b"GET /health-check HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        assert answer(sock) == b""


def test_three_hundred_half_sent_requests_are_capped_then_timed_out(start_server):
    server = start_server("echo", env={**FAST, "COG_RUNNER_MAX_CONNECTIONS": "32"})
    sockets = [connect(server.port) for _ in range(300)]
    try:
        for sock in sockets:
            sock.sendall(b"POST /predictions HTTP/1.1\r\n")
        replies = [answer(sock) for sock in sockets]  # every one ends: none is held open
    finally:
        for sock in sockets:
            sock.close()
    refused = [r for r in replies if r.startswith(b"HTTP/1.1 503")]
    timed_out = [r for r in replies if r.startswith(b"HTTP/1.1 408")]
    # A connection the kernel queued past the listen backlog may deliver its bytes after the idle timeout: closed.
    closed_quietly = [r for r in replies if r == b""]
    assert len(refused) + len(timed_out) + len(closed_quietly) == 300
    assert len(refused) >= 100
    assert all(r.endswith(b'{"error":"too many open connections","status":"failed"}') for r in refused)
    assert Client(server.port, timeout=5).get("/health-check").json["status"] == "READY"


def test_setup_failure_503_says_setup_failed(start_server):
    server = start_server("setupfail", wait=("SETUP_FAILED",))
    reply = server.client.predict({})
    assert reply.status == 503
    assert reply.json == {
        "error": "Setup failed, so this runner cannot run predictions. GET /health-check for the setup logs.",
        "status": "failed",
    }


def test_while_draining_503_says_the_runner_is_shutting_down(start_server):
    server = start_server("echo")
    slow = threading.Thread(target=lambda: Client(server.port).predict({"prompt": "a", "mode": "slow", "scale": 3}))
    slow.start()
    deadline = time.monotonic() + 10
    while server.client.get("/health-check").json["status"] != "BUSY":  # the slow one holds the slot
        assert time.monotonic() < deadline
        time.sleep(0.02)
    server.signal(signal.SIGTERM)
    reply = Client(server.port, timeout=5).predict({"prompt": "b"})
    while reply.status == 409 and time.monotonic() < deadline:  # busy, until the server has taken the signal
        time.sleep(0.02)
        reply = Client(server.port, timeout=5).predict({"prompt": "b"})
    slow.join(10)
    assert reply.status == 503
    assert reply.json == {"error": "The runner is shutting down and accepts no new predictions.", "status": "failed"}
    assert server.process.wait(10) == 0
