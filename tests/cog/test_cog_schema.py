"""Static OpenAPI generation: every predictor under predictors/ against its expected.json, and the errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocibuild.cog.schema import generate_schema, openapi_json, schema_command, split_ref
from ocibuild.errors import UserInputError

PREDICTORS = Path(__file__).parent / "predictors"
CASES = sorted(p.name for p in PREDICTORS.iterdir() if (p / "expected.json").is_file())
SHARED = ("PredictionRequest", "PredictionResponse", "Status", "HTTPValidationError", "ValidationError")


def expected(case: str) -> dict:
    return json.loads((PREDICTORS / case / "expected.json").read_text())


@pytest.mark.parametrize("case", CASES)
def test_predictor_schema(case: str) -> None:
    want = expected(case)
    result = generate_schema(PREDICTORS / case, want["run"], want["train"])
    schemas = result.openapi["components"]["schemas"]
    assert {
        k: v
        for k, v in schemas.items()
        if (k not in SHARED and not k.startswith("Training")) or k in ("TrainingInput", "TrainingOutput")
    } == want["components"]
    assert (result.streaming, result.concurrency_max, result.is_async) == (
        want["streaming"],
        want["concurrency_max"],
        want["is_async"],
    )
    assert result.openapi["paths"]["/predictions"]["post"].get("x-cog-streaming", False) is want["streaming"]


def test_document_shape() -> None:
    doc = generate_schema(PREDICTORS / "basic_class", "predict.py:Predictor", None).openapi
    assert doc["openapi"] == "3.0.2"
    assert doc["info"]["title"] == "Cog"
    assert list(doc["paths"]) == [
        "/",
        "/health-check",
        "/predictions",
        "/predictions/{prediction_id}",
        "/predictions/{prediction_id}/cancel",
        "/shutdown",
    ]
    assert list(doc["paths"]["/predictions/{prediction_id}"]) == ["put"]
    schemas = doc["components"]["schemas"]
    assert set(SHARED) <= set(schemas)
    assert schemas["Status"]["enum"] == ["starting", "processing", "succeeded", "canceled", "failed"]
    assert schemas["PredictionResponse"]["properties"]["output"] == {"$ref": "#/components/schemas/Output"}
    # Go's ordering: plain objects have sorted keys, properties keep declaration order.
    assert list(doc) == ["components", "info", "openapi", "paths"]
    assert list(schemas["Input"]["properties"]) == [
        "prompt",
        "max_tokens",
        "temperature",
        "verbose",
        "old_flag",
        "seed",
    ]


def test_train_adds_training_paths() -> None:
    doc = generate_schema(PREDICTORS / "train_and_predict", "predict.py:Predictor", "train.py:train").openapi
    assert "/trainings" in doc["paths"] and "/trainings/{training_id}/cancel" in doc["paths"]
    assert doc["components"]["schemas"]["TrainingRequest"]["properties"]["input"] == {
        "$ref": "#/components/schemas/TrainingInput"
    }
    train_only = generate_schema(PREDICTORS / "train_and_predict", None, "train.py:train").openapi
    assert "/predictions" not in train_only["paths"] and "Input" not in train_only["components"]["schemas"]


def test_openapi_json_is_compact_and_schema_command_reads_cog_yaml(tmp_path: Path) -> None:
    (tmp_path / "predict.py").write_text((PREDICTORS / "function_predictor" / "predict.py").read_text())
    (tmp_path / "cog.yaml").write_text('build:\n  python_version: "3.12"\nrun: predict.py:predict\n')
    printed = json.loads(schema_command(tmp_path))
    assert printed == json.loads(schema_command(tmp_path / "cog.yaml"))
    assert ", " not in openapi_json(printed) and ": " not in openapi_json(printed)


@pytest.mark.parametrize(
    ("ref", "parts"),
    [("predict.py:Predictor", ("predict.py", "Predictor")), ("src/my.py:run", ("src/my.py", "run"))],
)
def test_split_ref(ref: str, parts: tuple[str, str]) -> None:
    assert split_ref(ref) == parts


HEADER = "from typing import Optional\nimport cog\nfrom cog import BasePredictor, Input, Path, Secret\n\n"
ERRORS = {
    "unsupported input type": (
        "def predict(x: set[int]) -> str: ...",
        "predict.py:5: input 'x' of predict(): type set[int] is not supported; use str, int, float, bool, Path, "
        "File, Secret, list[T], dict, Any, Literal, or Optional/unions of those",
    ),
    "missing annotation": ("def predict(x) -> str: ...", "predict.py:5: input 'x' of predict() has no type annotation"),
    "missing return annotation": ("def predict(x: int): ...", "predict.py:5: predict() has no return type annotation"),
    "optional output": (
        "def predict(x: int) -> Optional[str]: ...",
        "predict.py:5: output type Optional[str] is not supported: outputs cannot be Optional or a Union",
    ),
    "union output": (
        "def predict(x: int) -> str | int: ...",
        "predict.py:5: output type str | int is not supported: outputs cannot be Optional or a Union",
    ),
    "None output": (
        "def predict(x: int) -> None: ...",
        "predict.py:5: output type None is not supported: run() must return a value",
    ),
    "default_factory": (
        "def predict(x: list[int] = Input(default_factory=list)) -> str: ...",
        "predict.py:5: input 'x' of predict(): default_factory is not supported; use default=",
    ),
    "dynamic choices": (
        "def predict(x: str = Input(choices=load())) -> str: ...",
        "predict.py:5: input 'x' of predict(): choices `load()` cannot be resolved statically",
    ),
    "dynamic default": (
        "def predict(x: int = compute()) -> str: ...",
        "predict.py:5: input 'x' of predict(): default `compute()` cannot be resolved statically",
    ),
    "unknown Input keyword": (
        "def predict(x: int = Input(maximum=3)) -> str: ...",
        "predict.py:5: input 'x' of predict(): Input() has no keyword 'maximum'",
    ),
    "star args": ("def predict(*args: int) -> str: ...", "predict.py:5: predict() must not take *args or **kwargs"),
    "union with Path": (
        "def predict(x: Path | str) -> str: ...",
        "predict.py:5: input 'x' of predict(): Path cannot be part of a union; unions may only combine str, int, "
        "float, bool, list and dict",
    ),
    "choices on float": (
        "def predict(x: float = Input(choices=[1.0, 2.0])) -> str: ...",
        "predict.py:5: input 'x' of predict(): choices are only supported on str and int inputs",
    ),
    "choices of the wrong type": (
        "def predict(x: str = Input(choices=[1, 2])) -> str: ...",
        "predict.py:5: input 'x' of predict(): choices must be a non-empty list of str values",
    ),
    "choices and Literal": (
        "from typing import Literal\ndef predict(x: Literal['a'] = Input(choices=['a'])) -> str: ...",
        "predict.py:6: input 'x' of predict(): use either choices= or Literal[...], not both",
    ),
    "BaseModel input": (
        "class Opts(cog.BaseModel):\n    a: int\ndef predict(x: Opts) -> str: ...",
        "predict.py:7: input 'x' of predict(): class Opts is not supported as an input type; use str, int, float, "
        "bool, Path, File, Secret, list[T], dict, Any, Literal, or Optional/unions of those",
    ),
    "plain class output": (
        "class Out:\n    a: int\ndef predict(x: int) -> Out: ...",
        "predict.py:5: output class Out must subclass cog.BaseModel, pydantic.BaseModel or TypedDict",
    ),
    "unknown output type": (
        "def predict(x: int) -> numpy.ndarray: ...",
        "predict.py:5: output type numpy.ndarray is not supported; use a primitive, Path, list[T], dict[str, T], "
        "a BaseModel or TypedDict class, Iterator[T] or ConcatenateIterator[str]",
    ),
    "concat of int": (
        "def predict(x: int) -> cog.ConcatenateIterator[int]: ...",
        "predict.py:5: cog.ConcatenateIterator[int]: ConcatenateIterator must yield str",
    ),
    "streaming without iterator": (
        "@cog.streaming\ndef predict(x: int) -> str: ...",
        "predict.py:5: @cog.streaming needs an Iterator or ConcatenateIterator output",
    ),
    "concurrent on sync": (
        "@cog.concurrent(max=2)\ndef predict(x: int) -> str: ...",
        "predict.py:5: @cog.concurrent(max=2) needs an async def",
    ),
    "concurrent not literal": (
        "N = 2\n@cog.concurrent(max=N)\nasync def predict(x: int) -> str: ...",
        "predict.py:6: @cog.concurrent(max=N) needs an integer literal N >= 1",
    ),
    "wrong keyword type": (
        "def predict(x: int = Input(ge='1')) -> str: ...",
        "predict.py:5: input 'x' of predict(): ge= has the wrong type (str)",
    ),
    "accept on a non-file input": (
        "def predict(x: str = Input(accept='text/plain')) -> str: ...",
        "predict.py:5: input 'x' of predict(): accept= is only valid on Path or File inputs",
    ),
    "default below ge": (
        "def predict(x: int = Input(default=1, ge=2, le=10)) -> str: ...",
        "predict.py:5: input 'x' of predict(): the default 1 is less than the minimum 2 (ge=)",
    ),
    "default above le": (
        "def predict(x: float = Input(default=2.5, le=2)) -> str: ...",
        "predict.py:5: input 'x' of predict(): the default 2.5 is greater than the maximum 2 (le=)",
    ),
    "default not a choice": (
        "def predict(x: str = Input(default='c', choices=['a', 'b'])) -> str: ...",
        "predict.py:5: input 'x' of predict(): the default 'c' is not one of the choices ['a', 'b']",
    ),
    "default of the wrong type": (
        "def predict(x: int = Input(default='1')) -> str: ...",
        "predict.py:5: input 'x' of predict(): the default '1' is not of type integer",
    ),
    "bool default for an int": (
        "def predict(x: int = True) -> str: ...",
        "predict.py:5: input 'x' of predict(): the default True is not of type integer",
    ),
    "default too short": (
        "def predict(x: str = Input(default='a', min_length=2)) -> str: ...",
        "predict.py:5: input 'x' of predict(): the default 'a' is shorter than min_length=2",
    ),
    "default too long": (
        "def predict(x: str = Input(default='abc', max_length=2)) -> str: ...",
        "predict.py:5: input 'x' of predict(): the default 'abc' is longer than max_length=2",
    ),
    "default not matching regex": (
        "def predict(x: str = Input(default='A', regex='^[a-z]+$')) -> str: ...",
        "predict.py:5: input 'x' of predict(): the default 'A' does not match regex='^[a-z]+$'",
    ),
    "syntax error": ("def predict(x: int) -> str\n    return 1", "predict.py:5: syntax error: expected ':'"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_unsupported_source_is_one_line_error(tmp_path: Path, case: str) -> None:
    body, message = ERRORS[case]
    (tmp_path / "predict.py").write_text(HEADER + body + "\n")
    with pytest.raises(UserInputError) as caught:
        generate_schema(tmp_path, "predict.py:predict", None)
    assert str(caught.value) == message
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("source", "ref", "message"),
    [
        (
            "class Predictor:\n    def setup(self): ...\n",
            "predict.py:Predictor",
            "predict.py:1: class Predictor has no run() or predict() method",
        ),
        (
            "x = 1\n",
            "predict.py:Predictor",
            "predict.py: no class or function named 'Predictor' is defined or imported here",
        ),
        ("x = 1\n", "nothere.py:Predictor", "nothere.py: file not found in {root}"),
        ("Predictor = 3\n", "predict.py:Predictor", "predict.py:1: Predictor must be a class or a function"),
    ],
)
def test_predictor_lookup_errors(tmp_path: Path, source: str, ref: str, message: str) -> None:
    (tmp_path / "predict.py").write_text(source)
    with pytest.raises(UserInputError) as caught:
        generate_schema(tmp_path, ref, None)
    assert str(caught.value) == message.format(root=tmp_path.resolve())


def test_nothing_to_describe(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="neither run nor train"):
        generate_schema(tmp_path, None, None)


def test_user_code_is_never_executed(tmp_path: Path) -> None:
    (tmp_path / "predict.py").write_text(
        "import sys\nsys.exit('imported!')\nraise SystemExit\ndef predict(x: int) -> int: ...\n"
    )
    assert generate_schema(tmp_path, "predict.py:predict", None).openapi["components"]["schemas"]["Output"] == {
        "title": "Output",
        "type": "integer",
    }
