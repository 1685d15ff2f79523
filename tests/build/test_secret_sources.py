"""A --secret source inside the project never reaches a layer, whatever its path."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from ocibuild.cog.build import BuildOptions, plan_project
from ocibuild.oci import Store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello-world"


def test_secret_files_inside_the_project_are_left_out_of_the_code_layer(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project)
    (project / "keys").mkdir()
    (project / "keys" / "hf_token").write_text("hf_secret\n")
    (project / ".netrc").write_text("machine x password y\n")
    options = BuildOptions(
        store=Store(tmp_path / "store"),
        offline=True,
        secrets={"hf": project / "keys" / "hf_token", "netrc": project / ".netrc"},
    )
    plan = plan_project(project, options)
    (platform,) = plan.platforms
    with contextlib.ExitStack() as stack:
        paths = {entry.path for entry in platform.code.recipe.entries(stack)}
    assert "src/predict.py" in paths
    assert not {"src/keys/hf_token", "src/.netrc"} & paths
    assert not any(w.path.endswith(("hf_token", ".netrc")) for w in plan.weights)
