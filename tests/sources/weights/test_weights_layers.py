"""Packing weights into layers: one layer per large file, small ones bundled, never re-read when unchanged."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from ocibuild.errors import UserInputError
from ocibuild.oci import Compression, Entry, Store, write_layer
from ocibuild.oci.tarwriter import tar_header
from ocibuild.sources.project.code import code_layer
from ocibuild.sources.project.fingerprint import ReadStats
from ocibuild.sources.project.weights import (
    WeightFile,
    find_weights,
    pack_weights,
    project_weight_files,
    weights_layers,
)

from .conftest import age, make_project

MiB = 1 << 20


def blob(seed: int, size: int) -> bytes:
    return hashlib.sha256(str(seed).encode()).digest() * (size // 32) + b"x" * (size % 32)


def layer_members(path: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return tar.getmembers()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(
        tmp_path / "project",
        {"weights/big.bin": blob(1, 3 * MiB), "weights/config.json": b"{}", "weights/tok.json": b'{"a":1}'},
    )


def files_of(project: Path) -> list[WeightFile]:
    return project_weight_files(project, find_weights(project, threshold=100))


def test_large_files_get_their_own_uncompressed_layer_small_ones_a_bundle(project: Path, store: Store) -> None:
    layers = weights_layers(files_of(project), store, single_threshold=MiB)
    assert [name for name, _ in layers] == ["src/weights/big.bin", "src/weights/config.json and 1 more"]
    big, bundle = (layer for _, layer in layers)
    assert big.media_type == "application/vnd.oci.image.layer.v1.tar" and big.digest == big.diff_id
    assert bundle.media_type == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert [m.name for m in layer_members(big.path)] == ["src", "src/weights", "src/weights/big.bin"]
    assert [m.name for m in layer_members(bundle.path)][2:] == ["src/weights/config.json", "src/weights/tok.json"]
    for member in layer_members(big.path):
        assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (0, 0, 0, "", "")
        assert member.mode == (0o755 if member.isdir() else 0o644)


def test_single_file_layer_is_byte_identical_to_the_core_tar_writer(project: Path, store: Store) -> None:
    source = project / "weights" / "big.bin"
    ours = weights_layers([WeightFile("/src/weights/big.bin", source)], store, single_threshold=MiB)[0][1]
    core = write_layer([Entry.file_from("src/weights/big.bin", source)], store, Compression.NONE, 0)
    assert ours.digest == core.digest and ours.size == core.size


def test_file_digest_is_taken_in_the_same_pass(project: Path, store: Store) -> None:
    stats = ReadStats()
    packed = pack_weights(files_of(project), store, stats=stats, single_threshold=MiB)
    expected = "sha256:" + hashlib.sha256((project / "weights" / "big.bin").read_bytes()).hexdigest()
    assert packed[0].files[0].digest == expected
    assert stats.files_hashed == 3 and stats.bytes_read == 3 * MiB + 2 + 7


def test_unchanged_weights_are_never_read_again(project: Path, store: Store) -> None:
    first = weights_layers(files_of(project), store, single_threshold=MiB)
    stats = ReadStats()
    again = weights_layers(files_of(project), Store(store.root), stats=stats, single_threshold=MiB)
    assert again == first
    assert (stats.files_hashed, stats.bytes_read, stats.layers_written) == (0, 0, 0)
    assert stats.fingerprint_hits == 3 and stats.layers_reused == 2


def test_code_change_does_not_touch_the_weights_layers(project: Path, store: Store) -> None:
    exclude = find_weights(project, threshold=100)
    code1 = code_layer(project, store, 0, exclude_paths=exclude)
    weights1 = weights_layers(files_of(project), store, single_threshold=MiB)
    (project / "predict.py").write_text("from cog import BasePredictor  # edited\n")
    stats = ReadStats()
    code2 = code_layer(project, store, 0, exclude_paths=exclude)
    weights2 = weights_layers(files_of(project), store, stats=stats, single_threshold=MiB)
    assert code2.digest != code1.digest
    assert weights2 == weights1
    assert stats.bytes_read == 0 and stats.files_hashed == 0


def test_changed_content_is_rehashed(project: Path, store: Store) -> None:
    first = dict(weights_layers(files_of(project), store, single_threshold=MiB))
    (project / "weights" / "big.bin").write_bytes(blob(2, 3 * MiB))  # same size, new bytes
    age(project / "weights" / "big.bin", 60)
    stats = ReadStats()
    second = dict(weights_layers(files_of(project), store, stats=stats, single_threshold=MiB))
    assert second["src/weights/big.bin"].digest != first["src/weights/big.bin"].digest
    assert stats.files_hashed == 1 and stats.layers_reused == 1


def test_touched_file_is_rehashed_but_gives_the_same_layer(project: Path, store: Store) -> None:
    first = weights_layers(files_of(project), store, single_threshold=MiB)
    age(project / "weights" / "big.bin", 7200)
    stats = ReadStats()
    assert weights_layers(files_of(project), store, stats=stats, single_threshold=MiB) == first
    assert stats.files_hashed == 1


def test_two_projects_share_the_weights_layer(tmp_path: Path) -> None:
    weights = blob(7, 2 * MiB)
    one = make_project(tmp_path / "one", {"weights/model.bin": weights, "predict.py": b"one"})
    two = make_project(tmp_path / "two", {"weights/model.bin": weights, "other.txt": b"two"})
    layer_one = weights_layers(files_of(one), Store(tmp_path / "s1"), single_threshold=MiB)
    layer_two = weights_layers(files_of(two), Store(tmp_path / "s2"), single_threshold=MiB)
    assert layer_one[0][1].digest == layer_two[0][1].digest


def test_zstd_layers_hold_the_same_tar(project: Path, store: Store) -> None:
    files = files_of(project)
    plain = weights_layers(files, store, single_threshold=MiB)[0][1]
    packed = weights_layers(files, store, compression="zstd", single_threshold=MiB)[0][1]
    assert packed.media_type.endswith("+zstd") and packed.digest != plain.digest
    assert packed.diff_id == plain.digest
    with open(packed.path, "rb") as f:
        data = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read()
    assert hashlib.sha256(data).hexdigest() == plain.digest.split(":")[1]


def test_bundles_are_split_at_bundle_max(tmp_path: Path, store: Store) -> None:
    project = make_project(tmp_path / "p", {f"w/{i}.json": blob(i, 400) for i in range(5)})
    packed = pack_weights(files_of(project), store, bundle_max=1000)
    assert [len(p.files) for p in packed] == [2, 2, 1]


def test_many_large_files_are_grouped_to_stay_under_the_layer_budget(tmp_path: Path, store: Store) -> None:
    project = make_project(tmp_path / "p", {f"w/shard-{i}.bin": blob(i, 1000 + i) for i in range(7)})
    packed = pack_weights(files_of(project), store, single_threshold=1000, max_layers=3)
    assert len(packed) <= 3
    paths = [f.path for p in packed for f in p.files]
    assert sorted(paths) == sorted(set(paths)) and len(paths) == 7


def test_layers_are_disjoint(project: Path, store: Store) -> None:
    seen: list[str] = []
    for _, layer in weights_layers(files_of(project), store, single_threshold=MiB):
        seen += [m.name for m in layer_members(layer.path) if not m.isdir()]
    assert len(seen) == len(set(seen)) == 3


def test_paths_relative_to_a_target(project: Path, store: Store) -> None:
    files = [WeightFile("/weights/" + f.path.rsplit("/", 1)[1], f.source) for f in files_of(project)]
    packed = pack_weights(files, store, root="/weights", single_threshold=MiB)
    assert [m.name for m in layer_members(packed[0].layer.path)] == ["big.bin"]


@pytest.mark.parametrize(
    "files",
    [
        [WeightFile("/src/a", Path("x")), WeightFile("/src/a", Path("y"))],
        [WeightFile("relative/a", Path("x"))],
    ],
)
def test_bad_weight_paths_are_refused(files: list[WeightFile], store: Store, tmp_path: Path) -> None:
    for f in files:
        (tmp_path / f.source).write_bytes(b"1")
    files = [WeightFile(f.path, tmp_path / f.source) for f in files]
    with pytest.raises(UserInputError):
        weights_layers(files, store)


def test_pinned_digest_mismatch_is_a_build_error(project: Path, store: Store) -> None:
    from ocibuild.errors import BuildError

    wrong = WeightFile("/src/w.bin", project / "weights" / "big.bin", "sha256:" + "0" * 64)
    with pytest.raises(BuildError, match="expected sha256:0000"):
        weights_layers([wrong], store, single_threshold=MiB)


def test_sizes_past_8_gib_use_pax_headers() -> None:
    header = tar_header(Entry(path="w.bin", kind=Entry.file("w", b"").kind, size=9 << 30), 0)
    info = tarfile.TarFile(fileobj=io.BytesIO(header + bytes(1024)), mode="r").next()
    assert info is not None and info.size == 9 << 30
    assert b"size=9663676416" in header


def test_files_are_read_through_their_own_fingerprints(project: Path, store: Store) -> None:
    weights_layers(files_of(project), store, single_threshold=MiB)
    os.rename(project / "weights" / "big.bin", project / "weights" / "moved.bin")
    (project / "weights" / "big.bin").write_bytes(blob(1, 3 * MiB))
    age(project / "weights" / "big.bin")
    stats = ReadStats()
    weights_layers(files_of(project), store, stats=stats, single_threshold=MiB)
    assert stats.files_hashed == 2  # a new inode at the old path, and the renamed file
