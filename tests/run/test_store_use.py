"""The store as containers use it: a relative ``--cache-dir`` works with runc, and ``prune`` never removes a
rootfs that a running container or a concurrent build is using."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocibuild.oci import Compression, LayerBlob, Store, write_layer
from ocibuild.run import run_build_commands, run_image
from tests.run.conftest import busybox_entries, image_of


@pytest.mark.parametrize("runtime", ["runc", "unshare"])
def test_a_relative_cache_dir_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd, runtime: str) -> None:
    monkeypatch.chdir(tmp_path)
    store = Store(Path("cache"))
    base = write_layer(busybox_entries(), store, Compression.GZIP)
    code = run_image(image_of([base], cmd=["/bin/sh", "-c", "echo ran"]), store, runtime=runtime)
    assert (code, capfd.readouterr().out) == (0, "ran\n")
    [layer] = run_build_commands([base], ["echo built > /f"], {}, store, 0, Compression.GZIP, env=["PATH=/bin"],
                                 runtime=runtime)  # fmt: skip
    assert isinstance(layer, LayerBlob)
