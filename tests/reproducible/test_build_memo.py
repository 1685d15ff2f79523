"""An unchanged rebuild answers from the build memo; any change to what a build reads makes it build again."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ocibuild.oci.layout import read_layout
from tests.reproducible.conftest import copy_project, digest_of, ocibuild

MEMO_LINE = "unchanged since the last build"


def _build(project: Path, store: Path, *extra: str):
    result = ocibuild(str(project), "--cache-dir", str(store), "--offline", *extra)
    return digest_of(result), MEMO_LINE in result.stderr


@pytest.mark.integration
def test_a_noop_rebuild_uses_the_memo_and_every_change_builds_again(warm_hello, tmp_path: Path) -> None:
    warm_store, warm_project, _ = warm_hello
    store = tmp_path / "store"
    shutil.copytree(warm_store, store, copy_function=lambda s, d: Path(d).hardlink_to(s))
    project = copy_project(warm_project, tmp_path / "project")

    first, memo = _build(project, store)
    assert not memo
    again, memo = _build(project, store, "-o", str(tmp_path / "elsewhere"))
    assert memo and again == first
    assert read_layout(tmp_path / "elsewhere").digest == first, "the memo writes a complete layout"

    predict = project / "predict.py"
    predict.write_text(predict.read_text().replace("hello", "howdy"))
    changed, memo = _build(project, store)
    assert not memo and changed != first

    lock = json.loads((project / "ocibuild.lock").read_text())
    (project / "ocibuild.lock").write_text(json.dumps(lock, indent=4))  # same content, new bytes: build again
    relocked, memo = _build(project, store)
    assert not memo and relocked == changed

    other_epoch, memo = _build(project, store, "--source-date-epoch", "1700000000")
    assert not memo and other_epoch != changed

    assert ocibuild("prune", "--all", "--cache-dir", str(store)).returncode == 0
    rebuilt = ocibuild(str(project), "--cache-dir", str(store))  # the memo's blobs are gone: a real (online) build
    assert MEMO_LINE not in rebuilt.stderr and digest_of(rebuilt) == changed
