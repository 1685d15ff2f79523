"""The store as containers use it: a relative ``--cache-dir`` works with runc, and ``prune`` never removes a
rootfs that a running container or a concurrent build is using."""

from __future__ import annotations

import gc
import os
import threading
import time
from pathlib import Path

import pytest

from ocibuild.cli import main
from ocibuild.oci import Compression, LayerBlob, Store, write_layer
from ocibuild.oci.store import StoreInUseError, lock_in_use
from ocibuild.run import run_build_commands, run_image
from ocibuild.run.extract import rootfs_for
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


def test_prune_keeps_the_rootfs_of_a_running_container(store: Store, base_layer: LayerBlob, tmp_path: Path,
                                                      capfd) -> None:  # fmt: skip
    signal = tmp_path / "signal"
    signal.mkdir()
    image = image_of([base_layer], cmd=["/bin/sh", "-c", "while [ ! -e /sig/go ]; do sleep 0.05; done; cat /etc/group"])
    codes: list[int] = []
    container = threading.Thread(target=lambda: codes.append(run_image(image, store, volumes=[f"{signal}:/sig"])))
    container.start()
    try:
        deadline = time.monotonic() + 30
        while not list((store.root / "tmp").glob("run-*/*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        rootfs = rootfs_for([base_layer], store)
        assert Store(store.root).prune() == 0, "nothing unused to prune"
        assert (rootfs / "bin/busybox").exists()
    finally:
        (signal / "go").touch()
        container.join(30)
    assert codes == [0] and "staff:x:50:" in capfd.readouterr().out
    assert Store(store.root).prune() > 0, "once the container is gone, its rootfs goes"
    assert not rootfs.exists()


def test_prune_skips_a_rootfs_being_unpacked_and_clears_leftovers(store: Store) -> None:
    base = store.root / "rootfs"
    for name in (".tmp-busy", ".tmp-fresh", ".tmp-killed", ".prune-killed", "abc"):
        (base / name / "etc").mkdir(parents=True)
        (base / name / "etc" / "f").write_text("x")
    an_hour_ago = time.time() - 3600
    os.utime(base / ".tmp-killed", (an_hour_ago, an_hour_ago))  # left by a build killed while unpacking
    busy = lock_in_use(base / ".tmp-busy", exclusive=True)  # a concurrent build unpacking a layer
    held = lock_in_use(base / "abc")  # a container on it
    try:
        assert store.prune() > 0
        assert sorted(os.listdir(base)) == [".tmp-busy", ".tmp-fresh", "abc"], "just made: about to be locked"
    finally:
        os.close(busy)  # type: ignore[arg-type]
        os.close(held)  # type: ignore[arg-type]
    assert store.prune() > 0 and sorted(os.listdir(base)) == [".tmp-busy", ".tmp-fresh"]


def test_prune_all_needs_the_store_alone(store: Store, base_layer: LayerBlob, tmp_path: Path, capsys) -> None:
    other = Store(store.root)  # another ocibuild process building
    with pytest.raises(StoreInUseError, match="in use by another ocibuild process"):
        store.prune(everything=True)
    assert store.has_blob(base_layer.digest)
    code = main(["prune", "--all", "--cache-dir", str(store.root)])
    assert code == 1 and capsys.readouterr().err.count("\n") == 1
    del other
    gc.collect()
    assert store.prune(everything=True) > 0
    assert not store.has_blob(base_layer.digest)
    opened = threading.Thread(target=Store, args=(store.root,), daemon=True)
    opened.start()
    opened.join(10)
    assert not opened.is_alive(), "prune --all gave the store back: another command can open it"
