"""scripts/cog_fixture_schemas.py: how a Cog integration fixture (txtar) is judged against `ocibuild schema`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "cog_fixture_schemas.py"
_spec = importlib.util.spec_from_file_location("cog_fixture_schemas", SCRIPT)
assert _spec is not None and _spec.loader is not None
checker = sys.modules.setdefault("cog_fixture_schemas", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(checker)

COG_YAML = '-- cog.yaml --\nbuild:\n  python_version: "3.12"\npredict: "predict.py:Predictor"\n'
PREDICT = (
    "-- predict.py --\nfrom cog import BasePredictor, Input\n\n\nclass Predictor(BasePredictor):\n"
    "    def predict(self, text: str, n: int = Input(default=5, ge=1)) -> str:\n        return text\n"
)
INSPECT = "exec docker inspect $TEST_IMAGE --format '{{index .Config.Labels \"run.cog.openapi_schema\"}}'\n"


@pytest.mark.parametrize(
    ("script", "files", "result"),
    [
        ("cog build\n" + INSPECT + "stdout '\"default\":5'\n! stdout 'nullable'\n", COG_YAML + PREDICT, "ok"),
        ("cog build\n" + INSPECT + "stdout '\"default\":6'\n", COG_YAML + PREDICT, "MISMATCH"),
        ("! cog build\nstderr 'minimum'\n", COG_YAML + PREDICT.replace("default=5", "default=0"), "rejected, as Cog"),
        ("! cog build\n", COG_YAML + PREDICT, "accepted; Cog rejects"),
        ("cog build\n", COG_YAML + PREDICT.replace("text: str", "text: set"), "REJECTED"),
        ("cog exec true\n", '-- cog.yaml --\nbuild:\n  python_version: "3.12"\n', "n/a"),
    ],
)
def test_fixture_results(tmp_path: Path, script: str, files: str, result: str) -> None:
    fixture = checker.parse_txtar("case", "# a test\n" + script + "\n" + files)
    assert checker.check(fixture, tmp_path)[0] == result


def test_assertions_are_read_only_after_a_schema_command() -> None:
    fixture = checker.parse_txtar("case", "cog predict -i x=1\nstdout 'hello'\n" + INSPECT + "stdout 'a'\n")
    assert fixture.schema_checks == [(True, "a")]
    assert not fixture.build_fails
