"""A password written into an image reference is refused, and never echoed in an error, a log or a path."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocibuild.cli import main
from ocibuild.errors import UserInputError
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
