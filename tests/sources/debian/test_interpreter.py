"""python-build-standalone interpreters through uv (3.10/3.12): pinning offline, and the error when unavailable."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocibuild.errors import BuildError, UserInputError
from ocibuild.oci.compression import Compression
from ocibuild.oci.store import Store
from ocibuild.sources.debian import interpreter


def test_pin_comes_from_uv_metadata_for_both_architectures() -> None:
    amd = interpreter.pin_interpreter("3.12", "amd64")
    arm = interpreter.pin_interpreter("3.12", "arm64")
    assert amd["key"].startswith("cpython-3.12.") and amd["key"].endswith("-linux-x86_64-gnu")
    assert arm["key"].endswith("-linux-aarch64-gnu") and arm["version"] == amd["version"]


def test_unreachable_download_is_one_line_naming_available_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UV_PYTHON_INSTALL_MIRROR", "http://127.0.0.1:9/python-build-standalone")
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    pin = interpreter.pin_interpreter("3.12", "amd64")
    with pytest.raises(BuildError) as info:
        store = Store(tmp_path / "store")
        interpreter.interpreter_recipe(pin, store, 0).materialise(store, Compression.GZIP)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("Python 3.12 is not available: downloading cpython-3.12.")
    assert message.endswith("Python versions available without a download: 3.11, 3.13, 3.14")


def test_a_patch_version_pins_exactly_that_build_or_names_the_known_ones() -> None:
    assert interpreter.pin_interpreter("3.12.4", "amd64")["version"] == "3.12.4"
    with pytest.raises(UserInputError, match=r"python_version 3\.12\.99: no python-build-standalone build of it"):
        interpreter.pin_interpreter("3.12.99", "amd64")
