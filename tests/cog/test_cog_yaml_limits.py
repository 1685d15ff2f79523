"""cog.yaml is untrusted text: alias bombs, deep nesting and duplicate keys end in one line and exit 2, quickly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ocibuild.cog.config import MAX_CONFIG_BYTES, load_config
from ocibuild.cog.yaml_lines import MAX_ALIASES, MAX_DEPTH
from ocibuild.errors import UserInputError

TAIL = 'build:\n  python_version: "3.12"\nrun: predict.py:Predictor\n'
PREDICT = "class Predictor:\n    def predict(self, x: int) -> int:\n        return x\n"


def laughs(levels: int = 9, fanout: int = 9) -> str:
    """The classic "billion laughs": each level is a list of `fanout` aliases of the level before (about 1 KB)."""
    lines = ["l0: &l0 [" + ", ".join(['"lol"'] * fanout) + "]"]
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * fanout) + "]")
    return "\n".join(lines) + "\n"


def project(tmp_path: Path, text: str) -> Path:
    (tmp_path / "cog.yaml").write_text(text)
    (tmp_path / "predict.py").write_text(PREDICT)
    return tmp_path / "cog.yaml"


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(UserInputError) as caught:
        load_config(project(tmp_path, text))
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_anchor_bomb_through_the_cli_is_exit_2_with_one_line(tmp_path: Path) -> None:
    bomb = laughs() + TAIL
    assert len(bomb) < 1200
    project(tmp_path, bomb)
    result = subprocess.run(
        [sys.executable, "-m", "ocibuild", "schema", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cog.yaml:")
    assert "aliases expand this value to more than" in lines[0]


def test_anchor_bomb_under_a_real_field_names_the_line_of_the_expanding_value(tmp_path: Path) -> None:
    text = laughs(levels=7, fanout=9) + 'build:\n  python_version: "3.12"\n  system_packages: *l6\n'
    message = error_of(tmp_path, text)
    # l0 holds 10 values, l1 91, ... l4 about 66k, l5 about 600k: the first value over the cap is on line 6.
    assert message.startswith("cog.yaml:6:5: invalid YAML: aliases expand this value to more than")


def test_merge_key_bomb_is_refused(tmp_path: Path) -> None:
    lines = ["m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9}"]
    for level in range(1, 9):
        merged = ", ".join([f"*m{level - 1}"] * 9)
        lines.append(f"m{level}: &m{level} {{<<: [{merged}], k{level}: 1}}")
    message = error_of(tmp_path, "\n".join(lines) + "\n" + TAIL)
    assert "aliases expand this value to more than" in message


def test_an_anchor_that_contains_itself_is_refused(tmp_path: Path) -> None:
    message = error_of(tmp_path, TAIL + "x: &x [1, *x]\n")
    assert message == "cog.yaml:4:4: invalid YAML: an alias refers to a value that contains it"


def test_too_many_aliases_are_refused(tmp_path: Path) -> None:
    text = "a: &a 1\nb: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]\n" + TAIL
    assert f"more than {MAX_ALIASES} aliases" in error_of(tmp_path, text)


def test_deep_nesting_is_refused_before_python_recursion_runs_out(tmp_path: Path) -> None:
    text = TAIL + "x: " + "[" * 100_000 + "]" * 100_000 + "\n"
    message = error_of(tmp_path, text)
    assert message.startswith("cog.yaml:4:")
    assert f"nested more than {MAX_DEPTH} levels deep" in message


def test_a_file_over_the_size_cap_is_refused_without_parsing(tmp_path: Path) -> None:
    text = TAIL + "# " + "x" * MAX_CONFIG_BYTES + "\n"
    assert error_of(tmp_path, text) == "cog.yaml:1:1: file is larger than 1024 KiB; is this cog.yaml?"


def test_ordinary_anchors_still_load_and_errors_under_them_have_a_line(tmp_path: Path) -> None:
    text = 'x-pkgs: &pkgs [ffmpeg, git]\nbuild:\n  python_version: "3.12"\n  system_packages: *pkgs\n'
    loaded = load_config(project(tmp_path, text + "run: predict.py:Predictor\n"))
    assert loaded.config.build.system_packages == ["ffmpeg", "git"]
    assert loaded.warnings[0].startswith("cog.yaml:1:1: x-pkgs: unknown key, ignored")
    bad = 'build: &b\n  python_version: "3.12"\n  gpu: maybe\nrun: predict.py:Predictor\n'
    assert error_of(tmp_path, bad).startswith("cog.yaml:3:8: build.gpu: must be a boolean")


# Cog reads cog.yaml with go.yaml.in/yaml/v4, whose Unmarshal has unique keys on by default and fails with
# `mapping key "x" already defined at line N`; PyYAML would silently keep the last value, so we check ourselves.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            TAIL + 'build:\n  python_version: "3.11"\n',
            "cog.yaml:4:1: invalid YAML: mapping key 'build' already defined at line 1",
        ),
        (
            'build:\n  python_version: "3.12"\n  gpu: false\n  gpu: true\nrun: predict.py:Predictor\n',
            "cog.yaml:4:3: invalid YAML: mapping key 'gpu' already defined at line 3",
        ),
        (
            TAIL.replace("build:\n", "build:\n  run:\n    - command: a\n      command: b\n"),
            "cog.yaml:4:7: invalid YAML: mapping key 'command' already defined at line 3",
        ),
        (
            'build: {python_version: "3.12", python_version: "3.11"}\nrun: predict.py:Predictor\n',
            "cog.yaml:1:33: invalid YAML: mapping key 'python_version' already defined at line 1",
        ),
    ],
    ids=["top-level", "nested", "inside-a-list-item", "flow-mapping"],
)
def test_duplicate_keys_are_refused_like_cog(tmp_path: Path, text: str, expected: str) -> None:
    assert error_of(tmp_path, text) == expected


def test_a_key_that_overrides_a_merged_key_is_not_a_duplicate(tmp_path: Path) -> None:
    text = 'x-base: &base {python_version: "3.11", gpu: false}\nbuild:\n  <<: *base\n  python_version: "3.12"\n'
    loaded = load_config(project(tmp_path, text + "run: predict.py:Predictor\n"))
    assert loaded.config.build.python_version == "3.12" and loaded.config.build.gpu is False
