#!/usr/bin/env python3
"""Screenshots of the playground for the examples (docs/playground/*.png), taken through ``ocibuild serve``.

For each example: build it (a store hit when built before), ``ocibuild serve EXAMPLE --playground``, fill the form
in headless Chromium, run, check what is shown (the greeting, the inverted image pixel by pixel, the streamed
words), save a screenshot, stop. Needs chromium + chromium-driver (scripts/install_test_tools.sh) and selenium
(the dev group). Usage: .venv/bin/python scripts/playground_screenshots.py [EXAMPLE...] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.e2e.support import png_encode  # noqa: E402
from tests.serve.browser import Page, start_browser, wait_for  # noqa: E402

EXAMPLES = ("hello-world", "image-pillow", "streaming")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gradient(width: int = 96, height: int = 64) -> bytes:
    pixels = [(x * 255 // (width - 1), y * 255 // (height - 1), 160) for y in range(height) for x in range(width)]
    return png_encode(width, height, pixels)


def pixel(page: Page, css: str, x: int, y: int) -> list[int]:
    script = """
        const img = document.querySelector(arguments[0]);
        const canvas = document.createElement('canvas');
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        const ctx = canvas.getContext('2d');
        ctx.drawImage(img, 0, 0);
        return Array.from(ctx.getImageData(arguments[1], arguments[2], 1, 1).data.slice(0, 3));
    """
    return page.js(script, css, x, y)


def drive(name: str, page: Page, scratch: Path) -> None:
    if name == "hello-world":
        page.fill("text", "playground")
        page.find("#run").click()
        page.wait_status("succeeded")
        assert page.output_text() == "hello playground", page.output_text()
    elif name == "image-pillow":
        source = scratch / "gradient.png"
        source.write_bytes(gradient())
        page.find("#in-image").send_keys(str(source))
        wait_for(lambda: page.find('.field[data-name="image"] .preview img'), what="the preview")
        page.fill("scale", "2")
        page.find("#run").click()
        page.wait_status("succeeded", timeout=60)
        image = wait_for(lambda: page.find("#output img"), what="the output image")
        assert wait_for(lambda: page.js("return arguments[0].naturalWidth", image)) == 192
        # pixel (10, 20) of the source is (26, 80, 160): inverted (229, 175, 95); the output is scaled 2x
        assert pixel(page, "#output img", 20, 40) == [229, 175, 95]
    elif name == "streaming":
        page.fill("prompt", "tokens arrive one by one as the model yields them")
        page.fill("delay", "0.15")
        page.find("#run").click()
        wait_for(lambda: page.status() == "processing" and "arrive" in page.output_text(), what="streamed words")
        page.wait_status("succeeded")


def shoot(name: str, out: Path, cache_dir: str | None, dark: bool) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "ocibuild", "serve", str(REPO / "examples" / name), "--playground", "-p", str(port)]
    if cache_dir:
        cmd += ["--cache-dir", cache_dir]
    process = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().decode().strip()

        def ready() -> bool:
            try:
                with urllib.request.urlopen(url.replace("/playground", "/health-check"), timeout=2) as reply:
                    return b'"READY"' in reply.read()
            except OSError:
                return False

        wait_for(ready, timeout=300, what=f"{name} READY")
        driver = start_browser(1400, 900)
        try:
            if dark:
                driver.execute_cdp_cmd(
                    "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}
                )
            page = Page(driver, url).open()
            with tempfile.TemporaryDirectory() as scratch:
                drive(name, page, Path(scratch))
            target = out / f"{name}{'-dark' if dark else ''}.png"
            driver.save_screenshot(str(target))
            print(target)
        finally:
            driver.quit()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("examples", nargs="*", default=list(EXAMPLES))
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "playground")
    parser.add_argument("--cache-dir", default=os.environ.get("OCIBUILD_CACHE"))
    parser.add_argument("--dark", action="store_true", help="also take each screenshot in the dark theme")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.examples:
        shoot(name, args.out, args.cache_dir, dark=False)
        if args.dark:
            shoot(name, args.out, args.cache_dir, dark=True)


if __name__ == "__main__":
    main()
