"""Headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driven by Selenium, and page helpers."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import require_tool

SCREENSHOTS_ENV = "OCIBUILD_PLAYGROUND_SCREENSHOTS"
"""Set to a directory to keep a screenshot of each page the browser tests check (docs/playground/ is made so)."""


def start_browser(width: int = 1400, height: int = 1000) -> Any:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = require_tool("chromium")
    for flag in (
        "--headless=new",
        "--no-sandbox",  # root in a VM: Chromium's sandbox needs user namespaces it may not get
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-sync",
        "--disable-component-update",
        "--mute-audio",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(require_tool("chromedriver")))


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition", driver: Any = None) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except Exception as exc:  # a stale element or a page still loading: try again
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.05)
    logs = ""
    if driver is not None:
        try:
            logs = "\n".join(str(entry) for entry in driver.get_log("browser"))
        except Exception:
            logs = ""
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}\nbrowser log:\n{logs}")


class Page:
    """The playground page in one browser tab."""

    def __init__(self, driver: Any, url: str) -> None:
        self.driver = driver
        self.url = url

    def open(self, *, clear_storage: bool = True) -> Page:
        self.driver.get(self.url)
        if clear_storage:
            self.driver.execute_script("localStorage.clear()")
            self.driver.get(self.url)
        wait_for(lambda: self.js("return document.body.dataset.ready === 'true'"), what="the form", driver=self.driver)
        wait_for(lambda: self.health() == "READY", what="the model READY", driver=self.driver)
        return self

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def find(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def health(self) -> str:
        return self.js("return document.getElementById('health').dataset.state || ''")

    def field(self, name: str) -> Any:
        return self.find(f'.field[data-name="{name}"]')

    def fill(self, name: str, value: str) -> None:
        element = self.find(f"#in-{name}")
        element.clear()
        element.send_keys(value)

    def status(self) -> str:
        return self.js("return document.getElementById('status').dataset.state || ''")

    def wait_status(self, *states: str, timeout: float = 30.0) -> str:
        return wait_for(lambda: self.status() in states and self.status(), timeout, f"status in {states}", self.driver)

    def output_text(self) -> str:
        return self.find("#output").text

    def screenshot(self, name: str) -> None:
        folder = os.environ.get(SCREENSHOTS_ENV)
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            self.driver.save_screenshot(str(Path(folder) / f"{name}.png"))
