"""Edge cases of the HTTP layer and output encoding that must never crash the server or leak internals."""

from __future__ import annotations

import socket

from cog.server.outputs import FileEncoder, to_json
from cog.types import Secret


def raw_request(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        return sock.recv(65536)


def test_malformed_content_length_is_a_400_not_a_crash(echo):
    for value in (b"abc", b"-3"):
        reply = raw_request(
            echo.port, b"POST /predictions HTTP/1.1\r\nHost: x\r\nContent-Length: " + value + b"\r\n\r\n{}"
        )
        assert reply.startswith(b"HTTP/1.1 400"), reply
    assert echo.client.get("/health-check").json["status"] == "READY"


def test_an_oversized_chunk_is_refused_before_it_is_buffered(echo):
    reply = raw_request(
        echo.port, b"POST /predictions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffff\r\n"
    )
    assert reply.startswith(b"HTTP/1.1 4"), reply


def test_secret_outputs_are_their_value():
    assert to_json(Secret("abc"), FileEncoder(None)) == "abc"
