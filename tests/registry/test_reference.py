"""Reference parsing and the http/https rule."""

from __future__ import annotations

import pytest

from ocibuild.errors import UserInputError
from ocibuild.registry.reference import Reference, is_loopback, parse_reference, uses_plain_http

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5000/org/model:v1", Reference("127.0.0.1:5000", "org/model", "v1")),
        ("localhost/model", Reference("localhost", "model", "latest")),
        ("r8.im/user/model", Reference("r8.im", "user/model", "latest")),
        ("ubuntu", Reference("docker.io", "library/ubuntu", "latest")),
        ("user/model:1.0", Reference("docker.io", "user/model", "1.0")),
        (f"ghcr.io/a/b@{DIGEST}", Reference("ghcr.io", "a/b", "", DIGEST)),
        (f"ghcr.io/a/b:t@{DIGEST}", Reference("ghcr.io", "a/b", "t", DIGEST)),
        ("[::1]:5000/a:b", Reference("[::1]:5000", "a", "b")),
    ],
)
def test_parse(text, expected):
    assert parse_reference(text) == expected


def test_with_digest_and_api_host():
    ref = parse_reference("ubuntu:22.04")
    assert ref.with_digest(DIGEST) == f"docker.io/library/ubuntu:22.04@{DIGEST}"
    assert ref.api_host == "registry-1.docker.io"
    assert str(parse_reference(f"h.io/a@{DIGEST}")) == f"h.io/a@{DIGEST}"


@pytest.mark.parametrize(
    "text", ["", "h.io/Upper/case", "h.io/a:bad tag", "h.io/a@sha256:short", "h.io/a::x", "h.io/a//b", "h.io/-a"]
)
def test_invalid(text):
    with pytest.raises(UserInputError):
        parse_reference(text)


def test_plain_http_only_for_loopback_or_named():
    assert is_loopback("127.0.0.1:5000") and is_loopback("localhost") and is_loopback("[::1]:80")
    assert not is_loopback("10.0.0.1:5000") and not is_loopback("example.com")
    assert uses_plain_http("localhost:5000")
    assert not uses_plain_http("registry.lan:5000")
    assert uses_plain_http("registry.lan:5000", ("registry.lan:5000",))
