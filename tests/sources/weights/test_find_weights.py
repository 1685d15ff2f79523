"""Finding weights in a project the way Cog's ``--separate-weights`` does."""

from __future__ import annotations

from pathlib import Path

from ocibuild.sources.project.weights import find_weights, project_weight_files

from .conftest import make_project

BIG = b"w" * 2000
SMALL = b"s" * 10


def find(tmp_path: Path, files: dict[str, bytes]) -> list[str]:
    return find_weights(make_project(tmp_path / "p", files), threshold=1000)


def test_large_root_file_is_listed_alone(tmp_path: Path) -> None:
    assert find(tmp_path, {"model.ckpt": BIG, "small.bin": SMALL}) == ["model.ckpt"]


def test_directory_holding_weights_goes_whole(tmp_path: Path) -> None:
    assert find(tmp_path, {"weights/a.bin": BIG, "weights/config.json": SMALL}) == ["weights"]


def test_shallowest_directory_wins(tmp_path: Path) -> None:
    assert find(tmp_path, {"models/sd/unet.bin": BIG, "models/vae.bin": BIG}) == ["models"]


def test_directory_with_code_keeps_its_code_and_lists_large_files(tmp_path: Path) -> None:
    found = find(tmp_path, {"lib/model.bin": BIG, "lib/helpers.py": SMALL, "lib/sub/other.bin": BIG})
    assert found == ["lib/model.bin", "lib/sub/other.bin"]


def test_code_file_with_a_similar_name_does_not_hold_a_directory(tmp_path: Path) -> None:
    assert find(tmp_path, {"w/model.bin": BIG, "w.py": SMALL}) == ["w"]


def test_code_media_wheels_and_logs_are_not_weights(tmp_path: Path) -> None:
    files = {name: BIG for name in ("big.py", "nb.ipynb", "x.whl", "a.PNG", "v.mp4", "s.wav", "train.log")}
    assert find(tmp_path, files) == []


def test_threshold_is_configurable(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", {"model.bin": BIG})
    assert find_weights(project, threshold=len(BIG) + 1) == []
    assert find_weights(project, threshold=len(BIG)) == ["model.bin"]
    assert find_weights(project) == []  # Cog's default: 10 MiB


def test_skipped_and_ignored_paths_are_never_weights(tmp_path: Path) -> None:
    files = {
        ".git/objects/pack.bin": BIG,
        ".cog/cache.bin": BIG,
        "__pycache__/x.bin": BIG,
        ".venv/lib/torch.so": BIG,
        "ignored/model.bin": BIG,
        ".dockerignore": b"ignored\n",
    }
    assert find(tmp_path, files) == []


def test_weight_files_are_placed_under_src(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", {"weights/a.bin": BIG, "weights/sub/c.json": SMALL, "model.ckpt": BIG})
    (project / "weights" / "alias.bin").symlink_to("a.bin")
    files = project_weight_files(project, find_weights(project, threshold=1000))
    assert [(f.path, f.source.name) for f in files] == [
        ("/src/model.ckpt", "model.ckpt"),
        ("/src/weights/a.bin", "a.bin"),
        ("/src/weights/alias.bin", "a.bin"),  # links are resolved: weights layers hold regular files only
        ("/src/weights/sub/c.json", "c.json"),
    ]
