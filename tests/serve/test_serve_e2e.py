"""End to end: ``ocibuild serve examples/streaming --playground`` builds the example, runs it under runc in its own
network and serves the page and the API on one origin; the browser streams the words; Ctrl-C stops it all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.serve.browser import Page, start_browser, wait_for

pytestmark = pytest.mark.integration


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_streaming_example_with_playground(shared_cache: Path, tmp_path: Path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "OCIBUILD_CACHE"}
    log = tmp_path / "serve.log"
    cmd = [sys.executable, "-m", "ocibuild", "serve", str(REPO / "examples" / "streaming"), "--playground"]
    cmd += ["-p", str(port), "--cache-dir", str(shared_cache)]
    with open(log, "wb") as err:
        process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode().strip()  # printed once the page and API are reachable
        assert line == f"http://127.0.0.1:{port}/playground", log.read_text()
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"{base}/health-check", timeout=2) as response:
                    return json.loads(response.read())["status"] == "READY"
            except OSError:
                return False

        wait_for(ready, timeout=180, what="the model READY")
        driver = start_browser()
        try:
            page = Page(driver, line).open()
            assert page.find("#model-title").text == "streaming"
            page.fill("prompt", "one two three four")
            page.fill("repeat", "2")
            page.fill("delay", "0.3")
            page.find("#run").click()
            partial = wait_for(
                lambda: page.status() == "processing" and "two" in page.output_text() and page.output_text(),
                what="words while the model streams",
            )
            assert "four one two three four" not in partial
            page.wait_status("succeeded")
            assert page.output_text().strip() == "one two three four one two three four"
            page.screenshot("streaming-example")
        finally:
            driver.quit()
        # the same origin serves the API to other clients too
        with urllib.request.urlopen(f"{base}/openapi.json", timeout=10) as response:
            assert "x-cog-streaming" in json.dumps(json.loads(response.read()))
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            code = process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code in (0, 130, 143), log.read_text()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the port is free again: nothing left listening
        try:
            urllib.request.urlopen(f"{base}/health-check", timeout=1)
        except OSError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("ocibuild serve still answers after SIGINT")
