"""Cog's SDK brings requests, pyyaml, structlog and typing_extensions into every image; the model's pins win."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ocibuild.cog.build import BuildOptions, load_project, resolve
from ocibuild.oci import Store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello-world"


def _versions(project: Path, tmp_path: Path) -> dict[str, str]:
    options = BuildOptions(store=Store(tmp_path / "store"))
    lock = resolve(load_project(project, options), options).lock
    return {d["name"]: d["version"] for d in lock.python["linux/amd64"]["distributions"]}


@pytest.mark.integration
def test_the_sdk_dependencies_are_resolved_with_the_model_and_its_pins_win(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project)
    (project / "ocibuild.lock").unlink()
    plain = _versions(project, tmp_path)
    assert {"requests", "pyyaml", "structlog", "typing-extensions"} <= set(plain)

    (project / "requirements.txt").write_text("requests==2.31.0\n")
    cog = (project / "cog.yaml").read_text()
    (project / "cog.yaml").write_text(cog.replace("build:\n", "build:\n  python_requirements: requirements.txt\n"))
    pinned = _versions(project, tmp_path)
    assert pinned["requests"] == "2.31.0" and plain["requests"] != "2.31.0"
    assert {"pyyaml", "structlog", "typing-extensions"} <= set(pinned)
