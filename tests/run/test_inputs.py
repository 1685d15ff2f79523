"""``-i``/``--json`` parsing against a schema: coercion, files as data URLs, one-line errors."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from ocibuild.errors import BuildError, UserInputError
from ocibuild.run import parse_input_args
from ocibuild.run.predict import _check_response, write_output
from tests.run.schema import SCHEMA


def test_values_are_coerced_to_the_schema_types(tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"\x89PNG")
    args = ["text=hi", "count=3", "scale=0.5", "loud=true", "style=fancy", "tags=1", "tags=2", f"image=@{photo}"]
    assert parse_input_args(args, None, SCHEMA) == {
        "text": "hi",
        "count": 3,
        "scale": 0.5,
        "loud": True,
        "style": "fancy",
        "tags": [1, 2],
        "image": "data:image/png;base64," + base64.b64encode(b"\x89PNG").decode(),
    }
    assert parse_input_args(["text=a=b", "tags=[3, 4]"], None, SCHEMA) == {"text": "a=b", "tags": [3, 4]}


def test_json_input_and_flags_merge(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    value = parse_input_args(["count=2"], f'{{"text": "hi", "image": "@{tmp_path}/a.txt"}}', SCHEMA)
    assert value == {"text": "hi", "count": 2, "image": "data:text/plain;base64,eA=="}


@pytest.mark.parametrize(
    ("args", "json_input", "message"),
    [
        (
            ["nope=1", "text=x"],
            None,
            'unknown input "nope"; the model\'s inputs are: text, count, scale, loud, style, tags, image',
        ),
        (["text=x", "count=two"], None, 'input "count": "two" is not of type "integer"'),
        (["text=x", "loud=maybe"], None, 'input "loud": "maybe" is not of type "boolean"'),
        (["text=x", "count=9"], None, 'input "count": 9 is greater than the maximum of 5'),
        (["text=x", "style=odd"], None, 'input "style": "odd" is not one of ["plain", "fancy"]'),
        (["count=2"], None, 'missing required input "text" (Text to repeat)'),
        ([], '{"text": 5}', 'input "text": 5 is not of type "string"'),
        ([], "[1]", "--json: expected a JSON object of inputs"),
        (["text"], None, "-i text: expected name=value (or name=@file)"),
        (["text=x", "image=@/no/such/file.png"], None, "/no/such/file.png: cannot read input file"),
    ],
)
def test_bad_inputs_are_one_line_errors(args: list[str], json_input: str | None, message: str) -> None:
    with pytest.raises(UserInputError) as info:
        parse_input_args(args, json_input, SCHEMA)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_without_a_schema_values_stay_strings() -> None:
    assert parse_input_args(["a=1", "b=x"], None, None) == {"a": "1", "b": "x"}


def test_outputs_are_printed_or_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert write_output("plain text", None, SCHEMA) == ("plain text", [])
    assert write_output({"a": 1}, None, SCHEMA) == ('{\n  "a": 1\n}', [])
    png = "data:image/png;base64," + base64.b64encode(b"img").decode()
    assert write_output(png, None, SCHEMA) == (None, [Path("output.png")])
    assert Path("output.png").read_bytes() == b"img"
    assert write_output([png, png], tmp_path / "out.png", SCHEMA) == (
        None,
        [tmp_path / "out.0.png", tmp_path / "out.1.png"],
    )
    stream = {"components": {"schemas": {"Output": {"type": "array", "x-cog-array-display": "concatenate"}}}}
    assert write_output(["a", "b"], None, stream) == ("ab", [])


def test_runner_rejections_become_one_line_errors() -> None:
    detail = {"detail": [{"loc": ["body", "input", "text"], "msg": "ensure this value has at most 20 characters"}]}
    with pytest.raises(UserInputError, match=r'^input "text": ensure this value has at most 20 characters$'):
        _check_response(422, detail)
    with pytest.raises(BuildError, match=r"^prediction failed: boom$"):
        _check_response(200, {"status": "failed", "error": "boom"})
    with pytest.raises(BuildError, match="HTTP 503"):
        _check_response(503, {"error": "Setup has not finished yet."})
