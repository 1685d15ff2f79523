"""``.dockerignore`` semantics: a table of Docker's documented behaviour (docs.docker.com, "dockerignore")."""

from __future__ import annotations

import pytest

from ocibuild.errors import UserInputError
from ocibuild.sources.project.ignore import IgnoreRules, clean_pattern

CASES = [
    # (ignore file lines, path, excluded?)
    (["*/temp*"], "somedir/temporary.txt", True),
    (["*/temp*"], "somedir/temp", True),
    (["*/temp*"], "temp.txt", False),
    (["*/temp*"], "a/b/temp.txt", False),
    (["*/*/temp*"], "somedir/subdir/temporary.txt", True),
    (["*/*/temp*"], "somedir/temporary.txt", False),
    (["temp?"], "tempa", True),
    (["temp?"], "temp", False),
    (["temp?"], "tempab", False),
    (["**/*.go"], "main.go", True),
    (["**/*.go"], "a/b/c/main.go", True),
    (["**/*.go"], "a/b/main.py", False),
    # later rules win; negation re-includes
    (["*.md", "!README.md"], "README.md", False),
    (["*.md", "!README.md"], "CHANGES.md", True),
    (["*.md", "!README*.md", "README-secret.md"], "README-secret.md", True),
    (["*.md", "!README*.md", "README-secret.md"], "README-public.md", False),
    (["*.md", "README-secret.md", "!README*.md"], "README-secret.md", False),
    # a directory pattern excludes everything below it; "!" re-includes one file inside it
    (["build"], "build", True),
    (["build"], "build/a/b.txt", True),
    (["build/"], "build/a/b.txt", True),
    (["build"], "src/build/x", False),
    (["docs", "!docs/keep.md"], "docs/keep.md", False),
    (["docs", "!docs/keep.md"], "docs/other.md", True),
    (["docs/**", "!docs/keep/**"], "docs/keep/a.txt", False),
    (["docs/**", "!docs/keep/**"], "docs/drop/a.txt", True),
    (["docs/**"], "docs", False),
    (["**", "!predict.py"], "predict.py", False),
    (["**", "!predict.py"], "cog.yaml", True),
    (["a/**/b"], "a/b", True),
    (["a/**/b"], "a/x/y/b", True),
    (["a/**/b"], "a/x/y/c", False),
    # comments only at column 0; whitespace trimmed; leading / and ./ dropped
    (["# predict.py"], "predict.py", False),
    ([" # x"], "# x", True),
    (["data.txt   "], "data.txt", True),
    (["   data.txt"], "data.txt", True),
    (["/data.txt"], "data.txt", True),
    (["./data.txt"], "data.txt", True),
    (["a/../data.txt"], "data.txt", True),
    (["!  data.txt"], "data.txt", False),
    # character classes, escapes, ? never matches /
    (["[a-c].txt"], "b.txt", True),
    (["[a-c].txt"], "d.txt", False),
    (["[!a].txt"], "b.txt", True),
    (["[!a].txt"], "a.txt", False),
    (["\\*.txt"], "*.txt", True),
    (["\\*.txt"], "a.txt", False),
    (["a?b"], "a/b", False),
    (["*"], "a/b", True),
    (["*.pyc"], "pkg/mod.pyc", False),
]


@pytest.mark.parametrize(("lines", "path", "excluded"), CASES)
def test_docker_semantics(lines: list[str], path: str, excluded: bool) -> None:
    assert IgnoreRules.from_patterns(lines, ".dockerignore").excluded(path) is excluded


def test_bom_and_blank_lines() -> None:
    rules = IgnoreRules.from_patterns(["\ufeffsecret.txt", "", "   "], ".dockerignore")
    assert [r.pattern for r in rules.rules] == ["secret.txt"]


@pytest.mark.parametrize("line", ["../outside", "..", "a/../../b", "!../x"])
def test_pattern_leaving_the_project_is_a_one_line_error(line: str) -> None:
    with pytest.raises(UserInputError) as err:
        IgnoreRules.from_patterns(["ok", line], ".dockerignore")
    assert str(err.value).startswith(".dockerignore:2: ")
    assert "\n" not in str(err.value)


def test_lone_bang_is_an_error() -> None:
    with pytest.raises(UserInputError, match=r"\.dockerignore:1: illegal exclusion pattern"):
        IgnoreRules.from_patterns(["!"], ".dockerignore")


@pytest.mark.parametrize(("raw", "clean"), [("/a/b/", "a/b"), ("./a//b", "a/b"), ("//a", "a"), ("a/./b/..", "a")])
def test_patterns_are_cleaned_like_go(raw: str, clean: str) -> None:
    assert clean_pattern(raw) == clean


def test_cogignore_rules_follow_dockerignore(tmp_path) -> None:
    (tmp_path / ".dockerignore").write_text("*.ckpt\n")
    (tmp_path / ".cogignore").write_text("!keep.ckpt\nnotes/\n")
    rules = IgnoreRules.from_project(tmp_path)
    assert rules.excluded("model.ckpt")
    assert not rules.excluded("keep.ckpt")
    assert rules.excluded("notes/a.txt")
