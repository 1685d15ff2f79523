"""Details Cog images have: an alternate config becomes /src/cog.yaml; model: is a push target like image:."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from ocibuild.cli import _push_target
from ocibuild.cog.build import BuildOptions, plan_project
from ocibuild.cog.config import load_config
from ocibuild.oci import Store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello-world"


def test_an_alternate_config_file_is_the_images_cog_yaml(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project)
    alternate = project / "cog.prod.yaml"
    alternate.write_text((project / "cog.yaml").read_text() + "environment: [STAGE=prod]\n")
    plan = plan_project(alternate, BuildOptions(store=Store(tmp_path / "store"), offline=True))
    with contextlib.ExitStack() as stack:
        entries = {e.path: e for e in plan.platforms[0].code.recipe.entries(stack)}
    assert entries["src/cog.yaml"].data == alternate.read_bytes()
    assert "STAGE=prod" in plan.platforms[0].contract.env


def test_model_is_the_push_target_when_there_is_no_image(tmp_path: Path) -> None:
    (tmp_path / "predict.py").write_text((EXAMPLE / "predict.py").read_text())
    (tmp_path / "cog.yaml").write_text('build:\n  python_version: "3.11"\nmodel: r8.im/acme/hello\n')
    assert _push_target(load_config(tmp_path / "cog.yaml").config) == "r8.im/acme/hello"
    (tmp_path / "cog.yaml").write_text('build:\n  python_version: "3.11"\nimage: ghcr.io/acme/hello\n')
    assert _push_target(load_config(tmp_path / "cog.yaml").config) == "ghcr.io/acme/hello"
