"""Acceptance: every example built by ocibuild runs under independent tools and gives the expected output.

For each example: ``ocibuild build`` -> ``ocibuild push`` to a local docker-registry -> ``skopeo copy`` back ->
``umoci unpack`` + ``runc run`` -> ``POST /predictions``; then ``ocibuild predict`` gives the same output.
One pushed image also runs under podman, and ``ocibuild predict`` rejects bad input with one-line errors.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import EXAMPLE_LIST, Session
from tests.e2e.support import (
    free_port,
    ocibuild,
    png_decode,
    png_encode,
    podman_container,
    predict_http,
    runc_container,
    sample_pixels,
    sse_events,
    tool,
    wait_ready,
)

pytestmark = pytest.mark.e2e

WIDTH, HEIGHT = 6, 4


def _inverted_scaled(scale: int) -> list[tuple[int, ...]]:
    source = sample_pixels(WIDTH, HEIGHT)
    return [
        tuple(255 - c for c in source[(y // scale) * WIDTH + x // scale])
        for y in range(HEIGHT * scale)
        for x in range(WIDTH * scale)
    ]


def _png_path(tmp: Path) -> Path:
    path = tmp / "input.png"
    path.write_bytes(png_encode(WIDTH, HEIGHT, sample_pixels(WIDTH, HEIGHT)))
    return path


def _data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _decode_data_url(url: str) -> bytes:
    header, _, payload = url.partition(",")
    assert header.startswith("data:image/png") and header.endswith(";base64"), header
    return base64.b64decode(payload)


@dataclass(frozen=True)
class Case:
    """What to send an example and what must come back, over HTTP and from ``ocibuild predict``."""

    http_input: Callable[[Path], dict[str, Any]]
    check_http: Callable[[Any], None]
    cli_args: Callable[[Path], list[str]]
    # (stdout of ocibuild predict, tmp dir, the HTTP output) -> None
    check_cli: Callable[[str, Path, Any], None]


def _check_image(output: Any) -> None:
    width, height, pixels = png_decode(_decode_data_url(output))
    assert (width, height) == (WIDTH * 2, HEIGHT * 2)
    assert pixels == _inverted_scaled(2)


def _check_image_cli(stdout: str, tmp: Path, http_output: Any) -> None:
    assert stdout == ""
    written = (tmp / "out.png").read_bytes()
    assert written == _decode_data_url(http_output), "ocibuild predict wrote other bytes than the HTTP output"


CASES: dict[str, Case] = {
    "hello-world": Case(
        http_input=lambda tmp: {"text": "e2e"},
        check_http=lambda out: _eq(out, "hello e2e"),
        cli_args=lambda tmp: ["-i", "text=e2e"],
        check_cli=lambda stdout, tmp, out: _eq(stdout, out + "\n"),
    ),
    "image-pillow": Case(
        http_input=lambda tmp: {"image": _data_url(_png_path(tmp).read_bytes(), "image/png"), "scale": 2},
        check_http=_check_image,
        cli_args=lambda tmp: ["-i", f"image=@{_png_path(tmp)}", "-i", "scale=2", "-o", str(tmp / "out.png")],
        check_cli=_check_image_cli,
    ),
    "streaming": Case(
        http_input=lambda tmp: {"prompt": "to be or not", "repeat": 2},
        check_http=lambda out: _eq(out, ["to", " be", " or", " not", " to", " be", " or", " not"]),
        cli_args=lambda tmp: ["-i", "prompt=to be or not", "-i", "repeat=2"],
        check_cli=lambda stdout, tmp, out: _eq(stdout, "".join(out) + "\n"),
    ),
    "torch-cpu": Case(
        http_input=lambda tmp: {"values": "4,3,2,1"},
        check_http=lambda out: _eq(out, [1.5, 7.0, 12.5]),
        cli_args=lambda tmp: ["-i", "values=4,3,2,1"],
        check_cli=lambda stdout, tmp, out: _eq(json.loads(stdout), out),
    ),
}


def _eq(actual: Any, expected: Any) -> None:
    assert actual == expected


def _predict_target(e2e: Session, name: str) -> Path:
    """What ``ocibuild predict`` gets: the project itself (its lock remembers any --find-links)."""
    e2e.build(name)
    return EXAMPLE_LIST[name].path


@pytest.mark.parametrize("name", list(CASES))
def test_example_from_registry_under_runc(e2e: Session, name: str, tmp_path: Path) -> None:
    case = CASES[name]
    pulled = e2e.pull(name)
    bundle = tmp_path / "bundle"
    tool("umoci", "unpack", "--image", f"{pulled}:e2e", bundle, timeout=600)
    config = json.loads((bundle / "config.json").read_text())
    assert config["process"]["cwd"] == "/src"
    assert "cog.server.http" in " ".join(config["process"]["args"])
    port = free_port()
    container_id = f"e2e-{name}-{os.getpid()}"
    log = tmp_path / f"{container_id}.log"
    try:
        with runc_container(bundle, container_id, [f"PORT={port}"]) as proc:
            wait_ready(port, lambda: proc.poll() is None, log=log)
            body = predict_http(port, case.http_input(tmp_path))
            if name == "streaming":
                events = sse_events(port, {"prompt": "a b c"})
                chunks = [data["chunk"] for event, data in events if event == "output"]
                assert chunks == ["a", " b", " c"], events
                assert events[-1][0] == "completed" and events[-1][1]["status"] == "succeeded"
        case.check_http(body["output"])

        result = ocibuild(
            "predict", _predict_target(e2e, name), "-q", *case.cli_args(tmp_path), *e2e.cache_args(), env=e2e.env
        )
        case.check_cli(result.stdout, tmp_path, body["output"])
    finally:
        shutil.rmtree(bundle, ignore_errors=True)


@pytest.mark.parametrize("name", list(EXAMPLE_LIST))
def test_committed_lock_is_current(e2e: Session, name: str) -> None:
    """Building an example leaves its committed ocibuild.lock byte for byte as it was."""
    lock = EXAMPLE_LIST[name].path / "ocibuild.lock"
    assert lock.is_file(), f"{lock} is missing: build the example once and commit the lock"
    before = lock.read_bytes()
    e2e.build(name)
    assert lock.read_bytes() == before, f"building {name} rewrote {lock}"


def test_podman_runs_pushed_image(e2e: Session, tmp_path: Path) -> None:
    """A standard engine (podman + runc) pulls an image ocibuild pushed and serves predictions from it."""
    pushed = e2e.push("hello-world")
    port = free_port()
    log = tmp_path / "podman.log"
    name = f"ocibuild-e2e-{os.getpid()}"
    with podman_container(pushed.ref, name, port, log) as proc:
        wait_ready(port, lambda: proc.poll() is None, timeout=240, log=log)
        body = predict_http(port, {"text": "podman"})
    assert body["output"] == "hello podman"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["-i", "colour=red", "-i", "prompt=x"], ['unknown input "colour"', "prompt, repeat, delay"]),
        (["-i", "prompt=x", "-i", "repeat=many"], ['"repeat"', '"many"', '"integer"']),
        (["-i", "repeat=2"], ['missing required input "prompt"', "Text to echo back"]),
        (["-i", "prompt=x", "-i", "repeat=11"], ['"repeat"', "maximum of 10"]),
    ],
    ids=["unknown-name", "wrong-type", "missing-required", "out-of-range"],
)
def test_predict_rejects_bad_input(e2e: Session, args: list[str], words: list[str]) -> None:
    result = ocibuild("predict", EXAMPLE_LIST["streaming"].path, "-q", *args, *e2e.cache_args(), env=e2e.env,
                      check=False)  # fmt: skip
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0]
