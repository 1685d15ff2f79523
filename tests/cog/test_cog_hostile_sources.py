"""Predictor paths that leave the project and pathological predict.py sources: exit 2 with one line, never a crash."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ocibuild.cog.config import load_config
from ocibuild.cog.pysource import MAX_EXPRESSION_DEPTH, MAX_SOURCE_BYTES, Project
from ocibuild.cog.schema import generate_schema
from ocibuild.errors import UserInputError

PREDICTOR = "from cog import BasePredictor\n\nclass Predictor(BasePredictor):\n    def predict(self, x: int) -> int:\n"
BODY = "        return x\n"


def project(tmp_path: Path, ref: str, source: str | None = PREDICTOR + BODY) -> Path:
    root = tmp_path / "project"
    root.mkdir(exist_ok=True)
    (root / "cog.yaml").write_text(f'build:\n  python_version: "3.12"\nrun: "{ref}"\n')
    if source is not None:
        (root / "predict.py").write_text(source)
    return root


def schema_error(root: Path) -> str:
    with pytest.raises(UserInputError) as caught:
        generate_schema(root, "predict.py:Predictor", None)
    message = str(caught.value)
    assert "\n" not in message
    return message


def cli(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocibuild", "schema", str(root)], capture_output=True, text=True, timeout=60
    )


# -- predictor paths -------------------------------------------------------------------------------


def test_a_predictor_above_the_project_is_refused_at_its_cog_yaml_line(tmp_path: Path) -> None:
    (tmp_path / "outside.py").write_text(PREDICTOR + BODY)
    root = project(tmp_path, "../outside.py:Predictor")
    with pytest.raises(UserInputError, match=r"^cog\.yaml:3:6: run: \.\./outside\.py is outside the project"):
        load_config(root / "cog.yaml")


def test_an_absolute_predictor_path_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text(PREDICTOR + BODY)
    root = project(tmp_path, f"{outside}:Predictor")
    with pytest.raises(UserInputError, match=r"^cog\.yaml:3:6: run: .*outside\.py is an absolute path"):
        load_config(root / "cog.yaml")


@pytest.mark.parametrize("how", ["file", "directory"])
def test_a_symlink_out_of_the_project_is_refused(tmp_path: Path, how: str) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "predict.py").write_text(PREDICTOR + BODY)
    ref = "predict.py:Predictor" if how == "file" else "models/predict.py:Predictor"
    root = project(tmp_path, ref, source=None)
    if how == "file":
        (root / "predict.py").symlink_to(tmp_path / "elsewhere" / "predict.py")
    else:
        (root / "models").symlink_to(tmp_path / "elsewhere")
    result = cli(root)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: cog.yaml:3:6: run: ")
    assert "is outside the project directory" in result.stderr


def test_a_symlink_that_stays_inside_the_project_is_fine(tmp_path: Path) -> None:
    root = project(tmp_path, "link.py:Predictor")
    (root / "link.py").symlink_to(root / "predict.py")
    assert load_config(root / "cog.yaml").predictor_ref == "link.py:Predictor"


def test_the_source_reader_refuses_paths_outside_its_project_too(tmp_path: Path) -> None:
    (tmp_path / "outside.py").write_text(PREDICTOR + BODY)
    root = project(tmp_path, "predict.py:Predictor")
    with pytest.raises(UserInputError, match=r"^\.\./outside\.py: outside the project directory"):
        Project(root).load("../outside.py")


# -- pathological sources --------------------------------------------------------------------------


def test_a_hundred_thousand_term_sum_is_exit_2_through_the_cli(tmp_path: Path) -> None:
    root = project(tmp_path, "predict.py:Predictor", "x = " + "1+" * 100_000 + "1\n" + PREDICTOR + BODY)
    result = cli(root)
    assert result.returncode == 2, result.stderr
    assert result.stderr == "error: predict.py:1: nested too deeply for Python's parser (an expression or block)\n"


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("-" * 100_000 + "1", "predict.py:1: nested too deeply for Python's parser (an expression or block)"),
        ("(" * 100_000 + "1" + ")" * 100_000, "predict.py:1: syntax error: too many nested parentheses"),
        ("a" + ".b" * 100_000, "predict.py:1: nested too deeply for Python's parser (an expression or block)"),
    ],
    ids=["unary-minus", "parentheses", "attributes"],
)
def test_expressions_python_cannot_parse_are_one_line(tmp_path: Path, prefix: str, expected: str) -> None:
    root = project(tmp_path, "predict.py:Predictor", "x = " + prefix + "\n" + PREDICTOR + BODY)
    assert schema_error(root) == expected


@pytest.mark.parametrize(
    "source",
    [
        PREDICTOR.replace("x: int)", "x: int = 0 + " + "1 + " * 500 + "1)") + BODY,
        PREDICTOR.replace("x: int)", "x: " + "list[" * 150 + "int" + "]" * 150 + ")") + BODY,
        PREDICTOR + "        return " + " + ".join(["x"] * 500) + "\n",
    ],
    ids=["default", "annotation", "function-body"],
)
def test_an_expression_deeper_than_the_limit_is_refused_with_its_line(tmp_path: Path, source: str) -> None:
    root = project(tmp_path, "predict.py:Predictor", source)
    message = f"an expression nested more than {MAX_EXPRESSION_DEPTH} levels deep; too deep to read"
    line = 4 if "return x\n" in source else 5
    assert schema_error(root) == f"predict.py:{line}: {message}"


def test_a_long_elif_chain_is_indexed_without_recursion(tmp_path: Path) -> None:
    chain = "if X == 0:\n    A = 0\n" + "".join(f"elif X == {i}:\n    A = {i}\n" for i in range(1, 700))
    root = project(tmp_path, "predict.py:Predictor", "X = 1\n" + chain + PREDICTOR + BODY)
    assert "Input" in generate_schema(root, "predict.py:Predictor", None).openapi["components"]["schemas"]


def test_a_source_over_the_size_cap_is_refused_before_parsing(tmp_path: Path) -> None:
    padding = "# " + "x" * 78 + "\n"
    source = PREDICTOR + BODY + padding * (MAX_SOURCE_BYTES // len(padding) + 1)
    root = project(tmp_path, "predict.py:Predictor", source)
    assert schema_error(root) == "predict.py:1: larger than 1024 KiB; too large to read"


def test_long_expressions_are_shortened_in_messages(tmp_path: Path) -> None:
    wide = "[" + ", ".join(str(i) for i in range(5000)) + "]"
    source = PREDICTOR.replace("x: int)", f"x: int = Input(default=f({wide})))") + BODY
    root = project(tmp_path, "predict.py:Predictor", source.replace("BasePredictor\n", "BasePredictor, Input\n", 1))
    message = schema_error(root)
    assert message.startswith("predict.py:4: input 'x' of predict(): default `f([0, 1, 2, 3")
    assert len(message) < 200
