"""A password written into an image reference is refused, and never echoed in an error, a log or a path."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocibuild.cli import main
from ocibuild.errors import UserInputError
from ocibuild.oci import Entry, ImageConfig, Store, build_image, write_layer
from ocibuild.outputs import write_outputs
from ocibuild.progress import Reporter
from ocibuild.registry.reference import parse_reference, redact

DIGEST = "sha256:" + "c" * 64


@pytest.mark.parametrize(
    "ref",
    [
        "user:s3cret@registry.example.com/org/model:1",
        "https://user:s3cret@registry.example.com/org/model",
        "user:s3/cr@et@localhost:5000/model@" + DIGEST,
        "s3cret@registry.example.com/model",
    ],
)
def test_credentials_in_a_reference_are_refused_without_echo(ref: str) -> None:
    with pytest.raises(UserInputError) as caught:
        parse_reference(ref)
    message = str(caught.value)
    assert "s3cret" not in message and "cr@et" not in message
    assert message.startswith("***@") and "credentials inside an image reference are not supported" in message


def test_digests_are_not_mistaken_for_credentials() -> None:
    assert str(parse_reference("ubuntu@" + DIGEST)) == "docker.io/library/ubuntu@" + DIGEST
    assert parse_reference("localhost:5000/m:1@" + DIGEST).digest == DIGEST
    assert redact("registry.example.com/m@" + DIGEST) == "registry.example.com/m@" + DIGEST


def test_the_command_line_exits_2_and_keeps_the_password_out(capsys, tmp_path: Path) -> None:
    code = main(["pull", "user:s3cret@127.0.0.1:9/model:1", str(tmp_path / "out"), "--cache-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 2
    assert "s3cret" not in captured.out + captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert not list(tmp_path.rglob("*s3cret*"))


def test_a_tag_with_credentials_is_refused_before_any_output_is_written(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    image = build_image([write_layer([Entry.file("f", b"x")], store)], ImageConfig())
    with pytest.raises(UserInputError) as caught:
        write_outputs(image, tmp_path / "layout", tmp_path / "image.tar", ["user:s3cret@reg.io/m:1"], Reporter(), 0)
    assert "s3cret" not in str(caught.value)
    assert not (tmp_path / "layout").exists() and not (tmp_path / "image.tar").exists()
