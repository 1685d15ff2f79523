"""SLSA v1 provenance from a lock: subjects, parameters, resolved dependencies, reproducibility marker."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ocibuild.attest.provenance import BuildFacts, check_subject, git_source, provenance_statement, subjects_of
from ocibuild.cog.lockfile import read_project_lock
from tests.helpers import REPO

IMAGE, INDEX = "sha256:" + "11" * 32, "sha256:" + "22" * 32


def _facts(tmp_path: Path, **extra) -> BuildFacts:
    cog_yaml = tmp_path / "cog.yaml"
    cog_yaml.write_text("build: {}\n")
    return BuildFacts(
        [("model", INDEX), ("linux/amd64", IMAGE)],
        cog_yaml,
        "{}\n",
        {"platforms": ["linux/amd64"], "compression": "gzip", "sourceDateEpoch": 5},
        "0.1.0",
        **extra,
    )


def test_statement_names_every_subject_and_every_pinned_input(tmp_path):
    sections = read_project_lock(REPO / "examples" / "gpu-torch").sections()
    statement = provenance_statement(_facts(tmp_path), sections)
    assert subjects_of(statement) == [INDEX, IMAGE]
    doc = json.loads(statement)
    deps = doc["predicate"]["buildDefinition"]["resolvedDependencies"]
    shas = {d["digest"].get("sha256") for d in deps}
    assert {p["sha256"] for p in sections["base"]["linux/amd64"]["packages"]} <= shas
    assert {d["sha256"] for d in sections["python"]["linux/amd64"]["distributions"]} <= shas
    inrelease = [d for d in deps if d["uri"].endswith("/InRelease")]
    assert len(inrelease) == len(sections["base"]["linux/amd64"]["archives"])
    assert "verifiedReproducible" not in doc["predicate"]["buildDefinition"]["internalParameters"]
    assert "source" not in doc["predicate"]["buildDefinition"]["externalParameters"]  # not a git checkout
    assert provenance_statement(_facts(tmp_path), sections) == statement  # no clock in it


def test_a_verified_reproducible_build_is_marked(tmp_path):
    statement = json.loads(provenance_statement(_facts(tmp_path, verified_reproducible=True), {}))
    assert statement["predicate"]["buildDefinition"]["internalParameters"]["verifiedReproducible"] is True


def test_check_subject(tmp_path):
    statement = provenance_statement(_facts(tmp_path), {})
    check_subject(statement, [INDEX])
    with pytest.raises(ValueError, match="is not the image"):
        check_subject(statement, [IMAGE])  # the first subject is the one pushed


def test_git_source_reports_a_dirty_checkout(tmp_path):
    def git(*args):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@e", "-C", str(tmp_path), *args],
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    (tmp_path / "predict.py").write_text("x = 1\n")
    git("add", "-A")
    git("commit", "-q", "-m", "x")
    assert git_source(tmp_path)["dirty"] is False
    (tmp_path / "predict.py").write_text("x = 2\n")
    source = git_source(tmp_path)
    assert source["dirty"] is True and source["uri"] == ""  # no remote
