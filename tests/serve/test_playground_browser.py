"""The playground in headless Chromium against real runners: the form generated from the schema, a run and its
output, streamed text as it arrives, a 422 at its field, cancel, file previews and media outputs, history,
snippets, the dark theme and keyboard use."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.support import png_encode, sample_pixels
from tests.serve.browser import Page, start_browser, wait_for


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    browser = start_browser()
    yield browser
    browser.quit()


def open_page(driver: Any, served: Any) -> Page:
    return Page(driver, served.url + "playground").open()


def test_form_has_one_control_per_input_and_runs(driver, serve, tmp_path):
    from selenium.webdriver.common.keys import Keys

    served = serve("echo")
    page = open_page(driver, served)
    names = page.js("return [...document.querySelectorAll('.field')].map(f => f.dataset.name + ':' + f.dataset.kind)")
    assert names == [
        "prompt:text",
        "n:number",
        "mode:select",
        "scale:number",
        "flag:bool",
        "code:text",
        "items:list",
        "note:text",
        "token:secret",
        "image:file",
    ]
    # every control is labelled; required marks, descriptions and defaults are shown
    unlabeled = page.js(
        "return [...document.querySelectorAll('#form input, #form select, #form textarea')]"
        ".filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.outerHTML)"
    )
    assert unlabeled == []
    assert page.find('label[for="in-prompt"] .req').text == "*"
    assert page.find("#in-prompt").get_attribute("aria-required") == "true"
    assert page.find_all('label[for="in-n"] .req') == []
    assert "Required text" in page.find("#desc-prompt").text
    assert "Range 1 to 10" in page.find("#desc-n").text
    assert page.find("#in-n").get_attribute("value") == "1"
    assert page.find('.field[data-name="n"] input[type="range"]')  # a slider from ge/le
    options = [o.text for o in page.find_all("#in-mode option")]
    assert options == ["plain", "file", "slow", "fail", "logs"]
    assert page.js("return document.getElementById('in-mode').selectedOptions[0].text") == "plain"
    assert page.find("#in-flag").get_attribute("role") == "switch"
    assert page.find("#in-token").get_attribute("type") == "password"
    assert page.find("#in-image").get_attribute("type") == "file"

    # fill the form: a slider moves the number, list items, a secret, a file; Enter in a text field runs
    page.fill("n", "3")
    page.find("#in-flag").click()
    page.find("#in-items").click()
    page.find('[aria-label="Items item 1"]').send_keys("4")
    page.find("#in-items").click()
    page.find('[aria-label="Items item 2"]').send_keys("5")
    page.fill("token", "s3cret")
    upload = tmp_path / "note.txt"
    upload.write_text("from a file")
    page.find("#in-image").send_keys(str(upload))
    wait_for(lambda: "note.txt" in page.find('.field[data-name="image"] .preview').text, what="the file preview")
    page.fill("prompt", "hi")
    page.find("#in-prompt").send_keys(Keys.ENTER)
    page.wait_status("succeeded")
    assert page.output_text() == "hihihi|1.0|True|ab|[4, 5]|None|s3cret|from a file"
    assert "token_count" in page.find("#metrics").text and "predict_time" in page.find("#metrics").text
    assert "running plain" in page.js("return document.getElementById('logs').textContent")
    page.screenshot("echo")

    # history keeps the run (never the secret); restoring it brings the inputs back
    stored = page.js("return JSON.stringify(localStorage)")
    assert "s3cret" not in stored
    history = page.find_all("#history button")
    assert len(history) == 1 and "prompt=hi" in history[0].text
    page.fill("prompt", "changed")
    history[0].click()
    assert page.find("#in-prompt").get_attribute("value") == "hi"
    assert page.find("#in-n").get_attribute("value") == "3"

    # the snippets name the current inputs; the secret comes from the environment
    page.fill("prompt", "snip")
    wait_for(lambda: "snip" in page.find("#snippet").text, what="the curl snippet")
    curl = page.find("#snippet").text
    assert f"{served.url}predictions".replace("//predictions", "/predictions") in curl
    assert "s3cret" not in curl, curl
    assert '"token": "\'"$TOKEN"\'"' in curl, curl
    assert "base64 -w0 'note.txt'" in curl, curl
    page.find("#tab-python").click()
    python = page.find("#snippet").text
    assert 'os.environ["TOKEN"]' in python and 'data_url("note.txt")' in python and '"n": 3' in python
    assert "requests.post(" in python


def test_a_422_is_shown_next_to_its_field(driver, serve):
    served = serve("echo")
    page = open_page(driver, served)
    page.fill("prompt", "hi")
    page.fill("n", "20")
    page.find("#run").click()
    error = wait_for(lambda: page.find("#err-n").is_displayed() and page.find("#err-n"), what="the field error")
    assert "20 is greater than the maximum of 10" in error.text
    assert page.find("#in-n").get_attribute("aria-invalid") == "true"
    assert page.js("return document.activeElement.id") == "in-n"
    assert page.find("#err-prompt").is_displayed() is False
    # a required input left empty: the model's "Field required" lands at that field
    page.fill("n", "2")
    page.find("#in-prompt").clear()
    page.find("#run").click()
    wait_for(lambda: "Field required" in page.find("#err-prompt").text, what="Field required at prompt")
    assert page.find("#in-n").get_attribute("aria-invalid") is None
    page.screenshot("echo-422")


def test_streamed_text_appears_as_it_arrives(driver, serve):
    served = serve("stream")
    page = open_page(driver, served)
    page.fill("words", "6")
    page.fill("delay", "0.5")
    page.find("#run").click()
    partial = wait_for(
        lambda: page.status() == "processing" and "w1" in page.output_text() and page.output_text(),
        what="words while the prediction runs",
    )
    assert "w5" not in partial
    page.wait_status("succeeded")
    assert page.output_text().strip() == "w0 w1 w2 w3 w4 w5"
    assert "words" in page.find("#metrics").text
    assert "-H 'Accept: text/event-stream'" in page.find("#snippet").text
    page.screenshot("stream")
    # cancel mid-stream: the words so far stay, the status says canceled
    page.fill("words", "50")
    page.find("#run").click()
    wait_for(lambda: "w2" in page.output_text(), what="the second run's words")
    page.find("#cancel").click()
    page.wait_status("canceled", timeout=10)
    assert "w49" not in page.output_text()
    served.runner.wait_until("READY", timeout=10)


def test_cancel_stops_a_running_prediction(driver, serve):
    served = serve("echo")
    page = open_page(driver, served)
    page.fill("prompt", "slow")
    page.find("#in-mode option:nth-child(3)").click()  # slow
    page.fill("scale", "30")
    page.find("#run").click()
    wait_for(lambda: page.find("#cancel").is_enabled(), what="the cancel button")
    served.runner.wait_until("BUSY")
    page.find("#cancel").click()
    page.wait_status("canceled", timeout=10)
    served.runner.wait_until("READY", timeout=10)
    assert page.find("#run").is_enabled()


def test_escape_cancels_and_sync_runs_show_logs_while_running(driver, serve):
    from selenium.webdriver.common.keys import Keys

    served = serve("echo")
    page = open_page(driver, served)
    page.fill("prompt", "x")
    page.find("#in-mode option:nth-child(5)").click()  # logs: one line per n, scale seconds apart
    page.fill("n", "10")
    page.fill("scale", "0.5")
    page.find("#run").click()
    wait_for(lambda: "line 1" in page.js("return document.getElementById('logs').textContent"), what="live logs")
    assert page.status() == "processing"
    page.find("body").send_keys(Keys.ESCAPE)
    page.wait_status("canceled", timeout=10)


def test_file_input_preview_and_media_outputs(driver, serve, tmp_path):
    served = serve("media")
    page = open_page(driver, served)
    image = tmp_path / "photo.png"
    image.write_bytes(png_encode(6, 4, sample_pixels()))
    page.find("#in-image").send_keys(str(image))
    wait_for(lambda: page.find('.field[data-name="image"] .preview img'), what="the image preview")
    page.find("#run").click()
    page.wait_status("succeeded")
    shown = wait_for(lambda: page.find("#output img"), what="the output image")
    assert wait_for(lambda: page.js("return arguments[0].naturalWidth", shown)) == 6
    link = page.find("#output a.download")
    assert link.get_attribute("download") == "output.png"
    page.screenshot("media-image")

    for ext, selector in (("wav", "#output audio"), ("json", "#output pre.json")):
        page.find(f'#in-ext option[value="{["png", "wav", "json", "txt"].index(ext)}"]').click()
        page.find("#run").click()
        page.wait_status("succeeded")
        wait_for(lambda selector=selector: page.find(selector), what=selector)
    # a text-like file is decoded and shown
    text_file = tmp_path / "data.json"
    text_file.write_text(json.dumps({"a": 1}))
    page.find("#in-image").send_keys(str(text_file))
    page.find("#run").click()
    page.wait_status("succeeded")
    wait_for(lambda: '"a": 1' in page.find("#output pre.json").text or '{"a": 1}' in page.find("#output").text)
    raw = page.find("#raw").get_attribute("textContent")
    assert "characters)" in raw or "data:" in raw


def test_dark_theme_follows_the_system(driver, serve):
    served = serve("media")
    page = open_page(driver, served)
    background = "return getComputedStyle(document.body).backgroundColor"
    light = page.js(background)
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}
    )
    try:
        dark = page.js(background)
        assert light != dark
        red, green, blue = (int(x) for x in dark[dark.index("(") + 1 : dark.index(")")].split(",")[:3])
        assert red + green + blue < 150
        page.screenshot("media-dark")
    finally:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def test_keyboard_focus_order_follows_the_form(driver, serve):
    from selenium.webdriver.common.keys import Keys

    served = serve("echo")
    page = open_page(driver, served)
    page.find("#in-prompt").click()
    order = []
    for _ in range(8):
        driver.switch_to.active_element.send_keys(Keys.TAB)
        order.append(page.js("return document.activeElement.id || document.activeElement.getAttribute('aria-label')"))
    assert order[:4] == ["in-n", "in-mode", "in-scale", "in-flag"]  # sliders are mouse helpers, out of tab order


def test_data_url_payload_is_what_the_runner_received(serve, tmp_path):
    """The file control sends a data URL: what the runner decodes is the file's bytes (checked without a browser
    by posting what the page posts)."""
    served = serve("media")
    payload = base64.b64encode(png_encode(2, 2, sample_pixels(2, 2))).decode()
    reply = served.client.predict({"image": f"data:image/png;base64,{payload}"})
    assert reply.json["output"] == f"data:image/png;base64,{payload}"


def test_copied_snippets_run_as_shown(driver, serve, tmp_path):
    """The curl and Python snippets for a filled form (a file, a secret, a list) give the page's own result when
    run by bash and Python, with the file beside them and the secret in the environment."""
    import os
    import subprocess
    import sys

    served = serve("echo")
    page = open_page(driver, served)
    upload = tmp_path / "it's a file.txt"
    upload.write_text("file body")
    page.find("#in-image").send_keys(str(upload))
    wait_for(lambda: "a file.txt" in page.find('.field[data-name="image"] .preview').text, what="the preview")
    page.fill("prompt", "it's")
    page.fill("token", "t0k")
    page.find("#in-items").click()
    page.find('[aria-label="Items item 1"]').send_keys("7")
    page.find("#run").click()
    page.wait_status("succeeded")
    expected = page.output_text()
    assert expected == "it's|1.0|False|ab|[7]|None|t0k|file body"
    env = {**os.environ, "TOKEN": "t0k"}
    wait_for(lambda: "base64 -w0" in page.find("#snippet").get_attribute("textContent"), what="the curl snippet")
    curl = page.find("#snippet").get_attribute("textContent")
    done = subprocess.run(["bash", "-c", curl], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert json.loads(done.stdout)["output"] == expected, (curl, done.stderr)
    page.find("#tab-python").click()
    python = page.find("#snippet").get_attribute("textContent")
    done = subprocess.run(
        [sys.executable, "-c", python], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == f"succeeded {expected}", (python, done.stderr)


def test_a_list_of_files_is_sent_in_order(driver, serve, tmp_path):
    served = serve("media")
    page = open_page(driver, served)
    assert page.field("more").get_attribute("data-kind") == "files"
    assert page.find("#in-more").get_attribute("multiple") is not None
    paths = []
    for name, text in (("a.txt", "first,"), ("b.txt", "second,"), ("c.txt", "third")):
        (tmp_path / name).write_text(text)
        paths.append(tmp_path / name)
    page.find("#in-image").send_keys(str(paths[0]))
    page.find("#in-more").send_keys("\n".join(str(p) for p in paths[1:]))
    wait_for(lambda: len(page.find_all('.field[data-name="more"] .preview-item')) == 2, what="two previews")
    page.find('#in-ext option[value="3"]').click()  # txt
    page.find("#run").click()
    page.wait_status("succeeded")
    assert wait_for(lambda: page.find("#output pre.json").text) == "first,second,third"
    assert page.find("#output a.download").get_attribute("download") == "output.txt"
