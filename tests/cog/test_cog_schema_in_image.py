"""Computed Input() values: the static generator says so (UnresolvedValue), and the values the runner's
``cog.server.introspect`` reads by importing the predictor complete the same document."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ocibuild.cog.pysource import SourceError
from ocibuild.cog.schema import UnresolvedValue, generate_schema
from tests.build.computed_inputs import EXPECTED_INPUT, PREDICT, TRAIN

RUNNER = Path(__file__).resolve().parents[2] / "layers" / "runner"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "predict.py").write_text(PREDICT)
    (tmp_path / "train.py").write_text(TRAIN)
    return tmp_path


def introspect(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(RUNNER), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "cog.server.introspect", *args]
    return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_a_computed_value_is_an_unresolved_value_naming_the_input(project: Path) -> None:
    with pytest.raises(UnresolvedValue, match=r"predict.py:\d+: input 'model' of predict\(\): choices `list"):
        generate_schema(project, "predict.py:Predictor", None)


def test_lenient_leaves_the_computed_options_out(project: Path) -> None:
    properties = generate_schema(project, "predict.py:Predictor", None, lenient=True).openapi["components"]["schemas"][
        "Input"
    ]["properties"]
    assert properties["model"] == {"title": "Model", "type": "string", "x-order": 0}
    assert properties["prompt"] == {"title": "Prompt", "type": "string", "x-order": 2}


def test_introspect_prints_only_json_and_the_values_complete_the_schema(project: Path) -> None:
    result = introspect(project, "--predict", "predict.py:Predictor", "--train", "train.py:train")
    assert result.returncode == 0, result.stderr
    assert "importing the model module" in result.stderr and "importing" not in result.stdout
    values = json.loads(result.stdout)
    assert values["predict"]["model"] == {"choices": ["small", "large"], "default": "small"}
    assert values["train"]["prompt"] == {"description": "What to draw", "default": "a cat"}
    document = generate_schema(project, "predict.py:Predictor", "train.py:train", runtime=values).openapi
    schemas = document["components"]["schemas"]
    assert schemas["Input"]["properties"] == EXPECTED_INPUT
    assert schemas["model"]["enum"] == ["small", "large"]
    assert schemas["TrainingInput"]["properties"]["epochs"]["default"] == 4
    assert schemas["TrainingInput"]["properties"]["prompt"]["default"] == "a cat"


def test_a_runtime_default_still_has_to_satisfy_its_input(project: Path) -> None:
    values = {"predict": {"model": {"choices": ["small", "large"], "default": "huge"}}}
    with pytest.raises(SourceError, match="the default 'huge' is not one of the choices"):
        generate_schema(project, "predict.py:Predictor", None, runtime=values)


def test_a_default_that_is_not_json_is_one_line_and_exit_1(project: Path) -> None:
    (project / "predict.py").write_text(
        "from cog import BasePredictor, Input\n\nclass Predictor(BasePredictor):\n"
        "    def predict(self, x: str = Input(default=object())) -> str:\n        return x\n"
    )
    result = introspect(project, "--predict", "predict.py:Predictor")
    assert result.returncode == 1 and result.stdout == ""
    assert "introspect: TypeError: input 'x': default: <object object" in result.stderr.splitlines()[-1]


def test_keywords_spread_from_a_mapping_are_read_at_runtime(tmp_path: Path) -> None:
    (tmp_path / "predict.py").write_text(
        "from cog import BasePredictor, Input\n\nCOMMON = dict(description='Steps', ge=1)\n\n"
        "class Predictor(BasePredictor):\n"
        "    def predict(self, steps: int = Input(default=4, **COMMON)) -> int:\n        return steps\n"
    )
    with pytest.raises(UnresolvedValue, match=r"`\*\*COMMON` cannot be read statically"):
        generate_schema(tmp_path, "predict.py:Predictor", None)
    values = json.loads(introspect(tmp_path, "--predict", "predict.py:Predictor").stdout)
    steps = generate_schema(tmp_path, "predict.py:Predictor", None, runtime=values).openapi["components"]["schemas"][
        "Input"
    ]["properties"]["steps"]
    assert steps == {
        "default": 4,
        "description": "Steps",
        "minimum": 1,
        "title": "Steps",
        "type": "integer",
        "x-order": 0,
    }
