"""Inputs the schema marks optional or passes through: `Input(default=None)` on any type, TypedDicts, Opaque."""

from __future__ import annotations

import base64
import json
import shutil

import pytest

from tests.runner.harness import PREDICTORS, with_generated_schema

NAMES = ("seed", "scale", "prompt", "flag", "image", "document", "numbers", "words", "images", "token", "plain")


def _data(text: str) -> str:
    return "data:text/plain;base64," + base64.b64encode(text.encode()).decode()


@pytest.fixture(params=["with-schema", "without-schema"])
def server(request, start_server, tmp_path):
    """The predictor served with the schema ocibuild generates for it, and with no schema at all."""
    if request.param == "without-schema":
        shutil.copy(PREDICTORS / "nonedefaults" / "predict.py", tmp_path / "predict.py")
        return start_server(str(tmp_path))
    server = start_server(with_generated_schema("nonedefaults", tmp_path))
    assert "required" not in json.loads(server.client.get("/openapi.json").body)["components"]["schemas"]["Input"]
    return server


def test_every_omitted_input_arrives_as_none(server):
    reply = server.client.predict({})
    assert reply.status == 200, reply.body
    assert reply.json["status"] == "succeeded", reply.json
    assert reply.json["output"] == dict.fromkeys(NAMES)


@pytest.mark.parametrize(
    ("name", "value", "seen"),
    [
        ("seed", 42, 42),
        ("scale", 2, 2.0),
        ("prompt", "hi", "hi"),
        ("flag", False, False),
        ("image", _data("img"), "img"),
        ("document", _data("doc"), "doc"),
        ("numbers", [1, 2], [1, 2]),
        ("words", ["a"], ["a"]),
        ("images", [_data("a"), _data("b")], ["a", "b"]),
        ("token", "s3cret", "s3cret"),
        ("plain", 7, 7),
    ],
)
def test_a_given_input_is_still_passed_and_converted(server, name, value, seen):
    body = server.client.predict({name: value}).json
    assert body["status"] == "succeeded", body
    assert body["output"] == {**dict.fromkeys(NAMES), name: seen}


def test_typeddict_and_opaque_inputs_pass_through(start_server, tmp_path):
    """The predictor of tests/cog/predictors/typeddict_opaque_inputs, with the schema ocibuild generates for it."""
    source = PREDICTORS.parents[1] / "cog" / "predictors" / "typeddict_opaque_inputs"
    server = start_server(with_generated_schema(str(source), tmp_path))
    inputs = {
        "data": {"name": "alice", "count": 2},
        "items": [{"name": "first", "count": 1}],
        "handle": {"id": 1},
        "handles": [{"id": 2}, {"id": 3}],
    }
    body = server.client.predict(inputs).json
    assert body["status"] == "succeeded", body
    assert body["output"] == {"handle": {"id": 1}, "handles": [{"id": 2}, {"id": 3}], "maybe": None}
    missing = server.client.predict({"data": {}}).json["detail"]
    assert [entry["loc"][-1] for entry in missing] == ["handle", "handles"]
