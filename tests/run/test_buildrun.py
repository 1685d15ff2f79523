"""cog.yaml ``build.run`` commands become deterministic layers: changes, whiteouts, secrets, cache."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from ocibuild.errors import BuildError, UserInputError
from ocibuild.oci import Compression, Entry, LayerBlob, Store, write_layer
from ocibuild.oci.compression import open_decompressor
from ocibuild.run import parse_secret_arg, run_build_commands
from ocibuild.run.extract import rootfs_for

ENV = ["PATH=/bin"]


def members(layer: LayerBlob) -> dict[str, tarfile.TarInfo]:
    with open(layer.path, "rb") as f, tarfile.open(fileobj=open_decompressor(Compression.GZIP, f), mode="r|") as tar:
        return {m.name: m for m in tar}


@pytest.fixture
def lower(store: Store, base_layer: LayerBlob) -> list[LayerBlob]:
    extra = write_layer(
        [
            Entry.file("etc/old.conf", b"old"),
            Entry.file("etc/same.conf", b"same"),
            Entry.file("opt/app/a", b"a"),
            Entry.file("opt/app/b", b"b"),
        ],
        store,
    )
    return [base_layer, extra]


def test_changes_become_one_layer_with_whiteouts(store: Store, lower: list[LayerBlob]) -> None:
    script = (
        "echo new > /etc/new.conf && echo changed > /etc/old.conf && touch /etc/same.conf && "
        "rm -r /opt/app && mkdir -p /srv/data && echo d > /srv/data/f && ln /srv/data/f /srv/data/g && "
        "chmod 4755 /srv/data/f && echo scratch > /tmp/ignored"
    )
    [layer] = run_build_commands(lower, [script], {}, store, 1_700_000_000, Compression.GZIP, env=ENV)
    names = members(layer)
    assert set(names) == {
        "etc",
        "etc/new.conf",
        "etc/old.conf",
        "opt",
        "opt/.wh.app",
        "srv",
        "srv/data",
        "srv/data/f",
        "srv/data/g",
    }
    assert names["srv/data/g"].islnk() and names["srv/data/g"].linkname == "srv/data/f"
    assert names["srv/data/f"].mode == 0o4755
    assert {m.mtime for m in names.values()} == {1_700_000_000}
    assert names["etc"].mode == 0o755
    root = rootfs_for([*lower, layer], store)
    assert (root / "etc/old.conf").read_text() == "changed\n"
    assert not (root / "opt/app").exists()
    assert (root / "srv/data/g").stat().st_ino == (root / "srv/data/f").stat().st_ino
    assert not list((store.root / "tmp").iterdir())


def test_secret_is_mounted_for_its_command_only_and_the_layer_is_cached(
    store: Store, lower: list[LayerBlob], tmp_path: Path
) -> None:
    secret_file = tmp_path / "token.txt"
    secret_file.write_text("s3cr3t")
    secrets = dict([parse_secret_arg(f"id=token,src={secret_file}")])
    commands = [
        {
            "command": "cat /run/secrets/token > /dev/null && wc -c < /run/secrets/token > /size",
            "mounts": [{"type": "secret", "id": "token", "target": "/run/secrets/token"}],
        },
        "test ! -e /run/secrets/token && cat /size > /size-copy",
    ]
    layers = run_build_commands(lower, commands, secrets, store, 0, Compression.GZIP, env=ENV)
    assert set(members(layers[0])) == {"size"}, "no secret, no mount point"
    assert set(members(layers[1])) == {"size-copy"}
    for layer in layers:
        with open(layer.path, "rb") as f:
            assert b"s3cr3t" not in open_decompressor(Compression.GZIP, f).read()
    hits = store.stats.key_hits
    os.rename(store.root / "rootfs", store.root / "rootfs-moved")  # a cache hit needs no rootfs at all
    again = run_build_commands(lower, commands, secrets, store, 0, Compression.GZIP, env=ENV)
    assert [layer.digest for layer in again] == [layer.digest for layer in layers]
    assert store.stats.key_hits == hits + 2
    assert not (store.root / "rootfs").exists()


def test_failures_are_one_line_errors(store: Store, lower: list[LayerBlob], tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="exited with code 3: exit 3"):
        run_build_commands(lower, ["exit 3"], {}, store, 0, Compression.GZIP, env=ENV)
    missing = {"command": "true", "mounts": [{"type": "secret", "id": "nope", "target": "/s"}]}
    with pytest.raises(UserInputError, match="secret 'nope' is not given"):
        run_build_commands(lower, [missing], {}, store, 0, Compression.GZIP, env=ENV)
    with pytest.raises(UserInputError, match="expected id=NAME,src=FILE"):
        parse_secret_arg("token")
    with pytest.raises(UserInputError, match="is not a file"):
        parse_secret_arg(f"id=x,src={tmp_path}/missing")


@pytest.mark.skipif(os.geteuid() != 0, reason="owners are only real when the command runs as root")
def test_owners_set_by_a_command_are_kept(store: Store, lower: list[LayerBlob]) -> None:
    script = "mkdir -p /home/app && echo x > /home/app/f && chown -R 1000:1001 /home/app"
    [layer] = run_build_commands(lower, [script], {}, store, 1_700_000_000, Compression.GZIP, env=ENV)
    names = members(layer)
    assert (names["home/app/f"].uid, names["home/app/f"].gid) == (1000, 1001)
    assert (names["home/app"].uid, names["home/app"].gid) == (1000, 1001)
    assert (names["home"].uid, names["home"].gid) == (0, 0)


@pytest.mark.skipif(os.geteuid() != 0, reason="owners are only real when the command runs as root")
def test_a_chown_alone_is_a_change_and_owned_parents_keep_their_owner(store: Store, lower: list[LayerBlob]) -> None:
    [first] = run_build_commands(lower, ["mkdir -p /home/app && chown 1000:1000 /home/app"], {}, store, 0,
                                 Compression.GZIP, env=ENV)  # fmt: skip
    [second] = run_build_commands([*lower, first], ["echo x > /home/app/new"], {}, store, 0, Compression.GZIP, env=ENV)
    names = members(second)
    assert (names["home/app"].uid, names["home/app"].gid) == (1000, 1000)
    [third] = run_build_commands([*lower, first], ["chown 1001 /home/app"], {}, store, 0, Compression.GZIP, env=ENV)
    assert members(third)["home/app"].uid == 1001


def test_buildkit_cache_and_secret_mounts_in_run_strings(store: Store, lower: list[LayerBlob], tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret")
    script = (
        "--mount=type=cache,target=/root/.cache/pip --mount=type=secret,id=hf,target=/run/secrets/hf "
        "sh -c 'echo run >> /root/.cache/pip/runs; wc -l < /root/.cache/pip/runs > /etc/runs; "
        "cat /run/secrets/hf > /dev/null && echo ok > /etc/secret-seen'"
    )
    for expected in (b"1", b"2"):  # the cache persists between builds (a fresh epoch forces a second run)
        epoch = 1_700_000_000 + int(expected)
        [layer] = run_build_commands(lower, [script], {"hf": token}, store, epoch, Compression.GZIP, env=ENV)
        names = members(layer)
        assert set(names) == {"etc", "etc/runs", "etc/secret-seen"}, "neither the cache nor the secret is in it"
        with open(layer.path, "rb") as f, tarfile.open(fileobj=open_decompressor(Compression.GZIP, f)) as tar:
            assert tar.extractfile("etc/runs").read().strip() == expected


def test_unsupported_buildkit_mounts_are_one_line(store: Store, lower: list[LayerBlob]) -> None:
    with pytest.raises(UserInputError, match=r"^build.run: --mount=type=bind,target=/x: only type=cache and type="):
        run_build_commands(lower, ["--mount=type=bind,target=/x true"], {}, store, 0, Compression.GZIP, env=ENV)
