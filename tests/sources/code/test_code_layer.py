"""The code layer: what goes to /src, symlink safety, and a store hit without reading files."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from ocibuild.errors import UserInputError
from ocibuild.oci import Store
from ocibuild.sources.project.code import code_layer
from ocibuild.sources.project.fingerprint import ReadStats

from .conftest import age


def members(layer) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(layer.path) as tar:
        return {m.name: m for m in tar.getmembers()}


def code_files(project: Path, store: Store, exclude_paths=frozenset()) -> list[str]:
    """The project paths the code layer holds under /src, read back from the layer."""
    names = members(code_layer(project, store, 0, exclude_paths=exclude_paths))
    return sorted(name.removeprefix("src/") for name in names if name.startswith("src/"))


def test_selects_project_without_vcs_caches_and_build_dirs(project: Path, store: Store) -> None:
    assert code_files(project, store) == ["cog.yaml", "lib", "lib/util.py", "predict.py", "run.sh"]


def test_dockerignore_and_cogignore_apply(project: Path, store: Store) -> None:
    (project / "data").mkdir()
    (project / "data" / "keep.txt").write_text("k")
    (project / "data" / "drop.txt").write_text("d")
    (project / ".dockerignore").write_text("# data is large\ndata\n!data/keep.txt\n")
    (project / ".cogignore").write_text("run.sh\n")
    assert code_files(project, store) == [
        ".cogignore",
        ".dockerignore",
        "cog.yaml",
        "data",  # the layer names the parent of what it keeps
        "data/keep.txt",
        "lib",
        "lib/util.py",
        "predict.py",
    ]


def test_exclude_paths_leave_out_weights(project: Path, store: Store) -> None:
    (project / "weights").mkdir()
    (project / "weights" / "model.bin").write_bytes(b"w")
    assert "weights/model.bin" not in code_files(project, store, exclude_paths={"weights"})
    assert "weights/model.bin" in code_files(project, store)


@pytest.mark.parametrize("bad", ["../elsewhere", "/etc", "weights/../../x"])
def test_exclude_path_escaping_the_project_is_an_error(project: Path, store: Store, bad: str) -> None:
    with pytest.raises(UserInputError) as err:
        code_files(project, store, exclude_paths={bad})
    assert "\n" not in str(err.value)


def test_layer_places_project_at_src_with_extra_files(project: Path, store: Store) -> None:
    schema = b'{"openapi":"3.0.2"}'
    layer = code_layer(project, store, 1_700_000_000, extra_files={".cog/openapi_schema.json": schema})
    found = members(layer)
    assert set(found) == {
        "src",
        "src/.cog",
        "src/.cog/openapi_schema.json",
        "src/cog.yaml",
        "src/lib",
        "src/lib/util.py",
        "src/predict.py",
        "src/run.sh",
    }
    assert found["src/run.sh"].mode == 0o755
    assert found["src/predict.py"].mode == 0o644
    assert {m.mtime for m in found.values()} == {1_700_000_000}
    with tarfile.open(layer.path) as tar:
        assert tar.extractfile("src/.cog/openapi_schema.json").read() == schema


def test_symlinks_inside_the_project_are_kept(project: Path, store: Store) -> None:
    (project / "current").symlink_to("lib")
    (project / "lib" / "alias.py").symlink_to("util.py")
    found = members(code_layer(project, store, 0))
    assert found["src/current"].issym() and found["src/current"].linkname == "lib"
    assert found["src/lib/alias.py"].linkname == "util.py"


@pytest.mark.parametrize("target", ["../../outside.txt", "/etc/passwd"])
def test_symlink_out_of_the_project_is_a_one_line_error(project: Path, store: Store, target: str) -> None:
    (project / "lib" / "leak").symlink_to(target)
    with pytest.raises(UserInputError, match=r"lib/leak: symlink to .* points outside the project") as err:
        code_layer(project, store, 0)
    assert "\n" not in str(err.value)


def test_ignored_symlink_out_of_the_project_is_fine(project: Path, store: Store) -> None:
    (project / "leak").symlink_to("/etc/passwd")
    (project / ".dockerignore").write_text("leak\n")
    assert "leak" not in code_files(project, store)


def test_unchanged_tree_is_a_store_hit_without_reading_files(project: Path, store: Store) -> None:
    first = code_layer(project, store, 0)
    stats = ReadStats()
    hits = store.stats.key_hits
    again = code_layer(project, store, 0, stats=stats)
    assert again.digest == first.digest
    assert stats.files_hashed == 0 and stats.bytes_read == 0
    assert stats.fingerprint_hits == 4 and stats.layers_reused == 1
    assert store.stats.key_hits == hits + 1


def test_a_change_rehashes_only_that_file(project: Path, store: Store) -> None:
    first = code_layer(project, store, 0)
    (project / "predict.py").write_text("from cog import BasePredictor  # v2\n")
    age(project / "predict.py")
    stats = ReadStats()
    second = code_layer(project, store, 0, stats=stats)
    assert second.digest != first.digest
    assert stats.files_hashed == 1 and stats.layers_written == 1


def test_a_fresh_file_is_rehashed_until_it_is_old_enough(project: Path, store: Store) -> None:
    (project / "predict.py").write_text("changed just now\n")
    code_layer(project, store, 0)
    stats = ReadStats()
    code_layer(project, store, 0, stats=stats)
    assert stats.files_hashed == 1  # racy: written within the timestamp window, so not trusted


def test_same_content_elsewhere_gives_the_same_layer(project: Path, tmp_path: Path, store: Store) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(project, copy, symlinks=True)
    (copy / "run.sh").chmod(0o700)  # modes are normalised
    assert code_layer(project, store, 5).digest == code_layer(copy, store, 5).digest


def test_mode_change_changes_the_layer(project: Path, store: Store) -> None:
    first = code_layer(project, store, 0)
    (project / "predict.py").chmod(0o755)
    assert code_layer(project, store, 0).digest != first.digest


def test_a_tree_deeper_than_the_recursion_limit_is_walked(tmp_path: Path) -> None:
    project = tmp_path / "project"
    deep = project
    project.mkdir()
    for _ in range(1200):  # Path.mkdir(parents=True) itself recurses
        deep = deep / "d"
        deep.mkdir()
    (deep / "leaf.txt").write_text("bottom\n")
    try:
        found = code_files(project, Store(tmp_path / "store"))
        assert len(found) == 1201 and found[-1].endswith("/d/leaf.txt")
    finally:  # pytest's own clean-up of old temp dirs (shutil.rmtree) recurses once per level
        subprocess.run(["rm", "-rf", str(project)], check=True)
