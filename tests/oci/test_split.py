"""Splitting one layer's entries into several by path: deterministic, lossless, self-contained parts."""

from __future__ import annotations

import hashlib
import random
import tarfile

import pytest

from ocibuild.oci import Entry, EntryKind, Store, write_layer
from ocibuild.oci.compression import Compression, open_decompressor
from ocibuild.oci.split import content_size, split_entries


def tree() -> list[Entry]:
    """A wheel-like tree: an explicit 0o700 directory, files of many sizes, a symlink, hardlinks."""
    rng = random.Random(7)
    entries = [Entry.directory("pkg/private", mode=0o700), Entry.directory("pkg/empty", mode=0o711)]
    for i in range(40):
        data = rng.randbytes(rng.randrange(0, 3000))
        entries.append(Entry.file(f"pkg/{'ab'[i % 2]}/m{i:02}.py", data, mode=0o755 if i % 5 == 0 else 0o644))
    entries.append(Entry.file("pkg/private/secret.bin", rng.randbytes(2500)))
    entries.append(Entry.hardlink("pkg/z/alias.py", "pkg/a/m00.py"))
    entries.append(Entry.hardlink("pkg/zz/alias2.py", "pkg/a/m00.py"))
    entries.append(Entry.symlink("pkg/link", "a/m02.py"))
    return entries


def files_of(layer) -> dict[str, tuple]:
    """Every member of a layer blob: (type, mode, link, sha256 of the content)."""
    with open(layer.path, "rb") as f, tarfile.open(fileobj=open_decompressor(Compression.GZIP, f), mode="r|") as tar:
        out = {}
        for m in tar:
            data = tar.extractfile(m).read() if m.isfile() else b""
            out[m.name] = (m.type, m.mode, m.linkname, hashlib.sha256(data).hexdigest())
        return out


def test_same_entries_give_the_same_parts() -> None:
    first = split_entries(tree(), 10_000)
    shuffled = tree()
    random.Random(1).shuffle(shuffled)
    second = split_entries(shuffled, 10_000)
    assert len(first) > 2
    assert [[e.path for e in part] for part in first] == [[e.path for e in part] for part in second]


@pytest.mark.parametrize("max_size", [3_000, 10_000, 40_000])
def test_the_parts_together_hold_exactly_the_unsplit_layers_files(tmp_path, max_size: int) -> None:
    """Each part is a valid layer alone (write_layer refuses a link or parent reaching into another part)."""
    store = Store(tmp_path / "store")
    whole = files_of(write_layer(tree(), store))
    parts = [files_of(write_layer(part, store)) for part in split_entries(tree(), max_size)]
    assert len(parts) > 1
    merged: dict[str, tuple] = {}
    for part in parts:
        for name, member in part.items():
            assert merged.setdefault(name, member) == member  # a directory in two parts is the same directory
    assert merged == whole
    files = [name for part in parts for name, m in part.items() if m[0] != tarfile.DIRTYPE]
    assert len(files) == len(set(files))  # every file in exactly one part


def test_no_part_exceeds_the_size_unless_one_file_does() -> None:
    parts = split_entries(tree(), 10_000)
    assert all(content_size(part) <= 10_000 for part in parts)
    big = [Entry.file("a/small", b"x" * 10), Entry.file("b/huge", b"y" * 500), Entry.file("c/small", b"z" * 10)]
    assert [[e.path for e in part] for part in split_entries(big, 100)] == [["a/small"], ["b/huge"], ["c/small"]]


def test_a_hardlink_stays_with_its_target_and_each_part_has_its_directories() -> None:
    parts = split_entries(tree(), 10_000)
    for part in parts:
        paths = {e.path for e in part}
        for entry in part:
            if entry.kind is EntryKind.HARDLINK:
                assert entry.link in paths
            if entry.path.startswith("pkg/private/"):
                assert next(e for e in part if e.path == "pkg/private").mode == 0o700
    assert sum(any(e.path == "pkg/empty" for e in part) for part in parts) == 1  # an empty directory: once


def test_a_layer_that_fits_or_has_whiteouts_is_one_part() -> None:
    assert split_entries(tree(), 10**9) == [tree()]
    with_whiteout = [*tree(), Entry.whiteout("pkg/old")]
    assert split_entries(with_whiteout, 1000) == [with_whiteout]
    with pytest.raises(ValueError):
        split_entries(tree(), 0)
