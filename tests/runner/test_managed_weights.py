"""Cog's managed weights: setup waits for each weights target's ``.cog/ready`` marker."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from tests.runner.harness import PREDICTORS


def test_setup_waits_for_the_ready_marker_of_every_target(tmp_path: Path, start_server):
    project = tmp_path / "project"
    shutil.copytree(PREDICTORS / "echo", project, ignore=shutil.ignore_patterns("__pycache__", ".runner-*"))
    target = tmp_path / "weights"
    (project / ".cog").mkdir(exist_ok=True)
    (project / ".cog" / "weights.json").write_text(json.dumps({"weights": [{"name": "w", "target": str(target)}]}))
    server = start_server(str(project), wait=())
    time.sleep(1.0)
    assert server.client.get("/health-check").json["status"] == "STARTING"
    (target / ".cog").mkdir(parents=True)
    (target / ".cog" / "ready").write_text("")
    assert server.wait_until("READY", timeout=20)["status"] == "READY"


def test_weights_that_never_become_ready_fail_setup(tmp_path: Path, start_server):
    project = tmp_path / "project"
    shutil.copytree(PREDICTORS / "echo", project, ignore=shutil.ignore_patterns("__pycache__", ".runner-*"))
    (project / ".cog").mkdir(exist_ok=True)
    missing = tmp_path / "never"
    (project / ".cog" / "weights.json").write_text(json.dumps({"weights": [{"name": "w", "target": str(missing)}]}))
    server = start_server(str(project), wait=("SETUP_FAILED",), env={"COG_WEIGHTS_READY_TIMEOUT": "0.5"})
    assert f"{missing}/.cog/ready" in json.dumps(server.client.get("/health-check").json)
