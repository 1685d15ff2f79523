"""The deterministic tar writer: order, parents, owners, times, links, whiteouts, and round-trips."""

from __future__ import annotations

import io
import random
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocibuild.oci.entries import Entry, entries_from_tree
from ocibuild.oci.tarwriter import LayerContentError, write_tar


def tar_bytes(entries, epoch: int = 1_700_000_000) -> bytes:
    out = io.BytesIO()
    write_tar(entries, out, epoch)
    return out.getvalue()


def members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


def test_parents_are_explicit_and_come_first():
    names = [m.name for m in members(tar_bytes([Entry.file("a/b/c.txt", b"x")]))]
    assert names == ["a", "a/b", "a/b/c.txt"]


def test_owner_time_and_mode_are_fixed():
    data = tar_bytes([Entry.file("f", b"x", mode=0o664, mtime=2_000_000_000), Entry.file("g", b"y", mtime=5)], 100)
    by_name = {m.name: m for m in members(data)}
    assert {(m.uid, m.gid, m.uname, m.gname) for m in by_name.values()} == {(0, 0, "", "")}
    assert by_name["f"].mtime == 100  # clamped to SOURCE_DATE_EPOCH
    assert by_name["g"].mtime == 5  # older times are kept
    assert by_name["f"].mode == 0o664
    assert all(not m.pax_headers for m in by_name.values())


def test_hardlink_is_written_after_its_target_even_when_it_sorts_first():
    data = tar_bytes([Entry.file("app/hello.txt", b"hi"), Entry.hardlink("app/hello-link.txt", "app/hello.txt")])
    names = [m.name for m in members(data)]
    assert names.index("app/hello.txt") < names.index("app/hello-link.txt")


def test_dangling_hardlink_and_duplicates_are_refused():
    with pytest.raises(LayerContentError, match="hardlink"):
        tar_bytes([Entry.hardlink("a", "missing")])
    with pytest.raises(LayerContentError, match="duplicate"):
        tar_bytes([Entry.file("a", b"1"), Entry.file("a", b"2")])
    with pytest.raises(LayerContentError, match="not a directory"):
        tar_bytes([Entry.symlink("lib", "usr/lib"), Entry.file("lib/x", b"")])


def test_whiteouts_come_before_their_siblings():
    data = tar_bytes([Entry.file("etc/a", b""), Entry.whiteout("etc/junk"), Entry.opaque("opt")])
    names = [m.name for m in members(data)]
    assert names == ["etc", "etc/.wh.junk", "etc/a", "opt", "opt/.wh..wh..opq"]


def test_paths_escaping_the_root_are_refused():
    with pytest.raises(ValueError, match="escapes"):
        Entry.file("../x", b"")
    assert Entry.file("/./a//b/", b"").path == "a/b"


def test_long_and_unicode_names_use_pax_only_when_needed():
    long_name = "d/" + "x" * 150
    data = tar_bytes([Entry.file(long_name, b"1"), Entry.file("ünï/çødé.txt", b"2")])
    by_name = {m.name: m for m in members(data)}
    assert long_name in by_name and "ünï/çødé.txt" in by_name


def test_the_stream_is_padded_like_tarfile():
    assert len(tar_bytes([Entry.file("a", b"x" * 1000)])) % tarfile.RECORDSIZE == 0


def test_a_file_that_changes_while_read_is_an_error(tmp_path: Path):
    path = tmp_path / "f"
    path.write_bytes(b"12345")
    entry = Entry.file_from("f", path, size=10)
    with pytest.raises(LayerContentError, match="shrank"):
        tar_bytes([entry])


# Property test: random trees round-trip through tarfile, and entry order never changes the bytes.
segment = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\\x00"),
    min_size=1,
    max_size=40,
).filter(lambda s: s not in (".", "..") and not s.startswith(".wh."))


@st.composite
def trees(draw):
    paths = draw(
        st.lists(st.lists(segment, min_size=1, max_size=4).map("/".join), min_size=1, max_size=25, unique=True)
    )
    entries: dict[str, Entry] = {}
    dirs = {"/".join(p.split("/")[:i]) for p in paths for i in range(1, len(p.split("/")))}
    files: list[str] = []
    for path in paths:
        if path in dirs:
            continue
        kind = draw(st.sampled_from(["file", "file", "dir", "symlink", "hardlink"]))
        if kind == "hardlink" and files:
            entries[path] = Entry.hardlink(path, draw(st.sampled_from(files)))
        elif kind == "dir":
            entries[path] = Entry.directory(path, draw(st.sampled_from([0o755, 0o700, 0o1777])))
        elif kind == "symlink":
            entries[path] = Entry.symlink(path, draw(segment))
        else:
            entries[path] = Entry.file(path, draw(st.binary(max_size=3000)), draw(st.sampled_from([0o644, 0o755])))
            files.append(path)
    return list(entries.values())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees(), st.randoms(use_true_random=False))
def test_random_trees_round_trip_and_ignore_input_order(entries, rnd: random.Random):
    data = tar_bytes(entries)
    shuffled = list(entries)
    rnd.shuffle(shuffled)
    assert tar_bytes(shuffled) == data
    by_name = {m.name: m for m in members(data)}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for entry in entries:
            member = by_name[entry.path]
            if entry.kind.value == "file":
                assert member.isreg() and tar.extractfile(member).read() == entry.data
                assert member.mode == entry.mode
            elif entry.kind.value == "dir":
                assert member.isdir() and member.mode == entry.mode
            elif entry.kind.value == "symlink":
                assert member.issym() and member.linkname == entry.link
            else:
                assert member.islnk() and member.linkname == entry.link
    names = list(by_name)
    for name in names:
        parent = name.rpartition("/")[0]
        assert not parent or names.index(parent) < names.index(name)


def test_entries_from_tree_normalises_modes_and_finds_hardlinks(tmp_path: Path):
    (tmp_path / "d").mkdir(mode=0o775)
    (tmp_path / "d" / "x").write_text("x")
    (tmp_path / "d" / "x").chmod(0o664)
    (tmp_path / "run").write_text("#!/bin/sh")
    (tmp_path / "run").chmod(0o775)
    (tmp_path / "d" / "y").hardlink_to(tmp_path / "d" / "x")
    (tmp_path / "link").symlink_to("d/x")
    got = {e.path: (e.kind.value, oct(e.mode), e.link) for e in entries_from_tree(tmp_path, "src")}
    assert got == {
        "src/d": ("dir", "0o755", ""),
        "src/d/x": ("file", "0o644", ""),
        "src/d/y": ("hardlink", "0o644", "src/d/x"),
        "src/link": ("symlink", "0o777", "d/x"),
        "src/run": ("file", "0o755", ""),
    }


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["file", "dir", "symlink", "hardlink", "whiteout", "opaque"]),
    st.text(alphabet="abcxyz019._-/", min_size=1, max_size=120).filter(lambda s: s.strip("/.") and ".." not in s),
    st.sampled_from([0o644, 0o755, 0o4755, 0o1777, 0o600]),
    st.integers(min_value=0, max_value=2**40),
    st.integers(min_value=0, max_value=2**33),
    st.text(alphabet="abc/._", max_size=110),
    st.integers(min_value=0, max_value=2**22),
    st.integers(min_value=0, max_value=2**22),
)
def test_fast_ustar_headers_equal_tarfiles_pax_headers(kind, path, mode, size, mtime, link, uid, gid):
    """Our own header builder gives tarfile's bytes, so digests never depend on which path built a header."""
    from ocibuild.oci.entries import EntryKind, normalize_path
    from ocibuild.oci.tarwriter import _pax_header, tar_header

    entry = Entry(normalize_path(path), EntryKind(kind), mode, size=size, link=link if link else "x", uid=uid, gid=gid)
    name = entry.tar_name + "/" if entry.kind is EntryKind.DIR else entry.tar_name
    effective_mode = 0o644 if kind in ("whiteout", "opaque") else mode
    effective_size = size if kind == "file" else 0
    effective_link = entry.link if kind in ("symlink", "hardlink") else ""
    assert tar_header(entry, mtime) == _pax_header(entry, name, effective_mode, effective_size, effective_link, mtime)


def test_streamed_entries_are_read_only_while_writing_and_checked_for_size(tmp_path: Path):
    opened = []

    def opener():
        opened.append(1)
        return io.BytesIO(b"streamed content")

    entry = Entry.file_stream("s/file", 16, opener, 0o755)
    assert not opened
    member = members(tar_bytes([entry]))[-1]
    assert opened == [1] and member.size == 16 and member.mode == 0o755
    assert tar_bytes([Entry.file_stream("s/file", 16, opener, 0o755)]) == tar_bytes(
        [Entry.file("s/file", b"streamed content", 0o755)]
    )
    with pytest.raises(LayerContentError, match="shrank"):
        tar_bytes([Entry.file_stream("s/file", 99, opener)])
