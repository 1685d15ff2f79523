"""A predictor whose inputs are computed builds: its schema is read by importing it in the built image, and the
label, /src/.cog/openapi_schema.json and the runner's /openapi.json are the same document."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ocibuild.cog.build import BuildOptions, build_project
from ocibuild.errors import BuildError
from ocibuild.oci import Store
from ocibuild.oci.image import Image
from ocibuild.progress import Reporter
from tests.build.computed_inputs import EXPECTED_INPUT, PREDICT, TRAIN
from tests.build.test_image_contract import layer_files
from tests.helpers import REPO
from tests.runner.harness import Server

pytestmark = pytest.mark.integration


@pytest.fixture
def project(tmp_path: Path) -> Path:
    dest = tmp_path / "proj"
    shutil.copytree(REPO / "examples" / "hello-world", dest)
    (dest / "predict.py").write_text(PREDICT)
    (dest / "train.py").write_text(TRAIN)
    (dest / "cog.yaml").write_text((dest / "cog.yaml").read_text() + 'train: "train.py:train"\n')
    return dest


def build(project: Path, store: Path, **options: object) -> Image:
    result = build_project(project / "cog.yaml", BuildOptions(store=Store(store), source_date_epoch=0, **options))
    assert isinstance(result.target, Image)
    return result.target


def schemas_of(image: Image, tmp_path: Path) -> tuple[dict, dict, dict]:
    """The label, the bundled file and what the runner serves at /openapi.json from that /src."""
    label = json.loads(image.config["config"]["Labels"]["run.cog.openapi_schema"])
    code = layer_files(image.layers[-1])
    src = tmp_path / "src"
    for name, data in code.items():
        if name.startswith("src/"):
            (src / name[4:]).parent.mkdir(parents=True, exist_ok=True)
            (src / name[4:]).write_bytes(data)
    server = Server(str(src))
    try:
        server.wait_until("READY")
        served = server.client.get("/openapi.json").json
    finally:
        server.stop()
    return label, json.loads(code["src/.cog/openapi_schema.json"]), served


def test_computed_inputs_are_read_in_the_image_and_the_three_copies_agree(
    project: Path, shared_cache: Path, tmp_path: Path
) -> None:
    log = io.StringIO()
    image = build(project, shared_cache, reporter=Reporter(stream=log, mode="plain"))
    assert "input 'model' of predict(): choices `list(MODELS.keys())` cannot be resolved statically; importing" in (
        log.getvalue()
    )
    label, bundled, served = schemas_of(image, tmp_path)
    assert label == bundled == served
    assert label["components"]["schemas"]["Input"]["properties"] == EXPECTED_INPUT
    assert label["components"]["schemas"]["model"]["enum"] == ["small", "large"]
    assert label["components"]["schemas"]["TrainingInput"]["properties"]["epochs"]["default"] == 4


def test_openapi_schema_file_overrides_both(project: Path, shared_cache: Path, tmp_path: Path) -> None:
    given = {
        "openapi": "3.0.2",
        "info": {"title": "Cog", "version": "0.1.0"},
        "paths": {},
        "components": {"schemas": {"Input": {"type": "object", "properties": {"words": {"type": "string"}}}}},
    }
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(given))
    label, bundled, served = schemas_of(build(project, shared_cache, openapi_schema=path), tmp_path)
    assert label == bundled == served == given


def test_a_predictor_that_fails_to_import_fails_the_build_with_its_error(project: Path, shared_cache: Path) -> None:
    (project / "predict.py").write_text(PREDICT + "\nraise RuntimeError('no weights in the build sandbox')\n")
    with pytest.raises(BuildError, match="no weights in the build sandbox") as caught:
        build(project, shared_cache)
    assert "\n" not in str(caught.value)


def test_openapi_schema_that_is_not_a_schema_is_exit_2(project: Path, shared_cache: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"openapi": "3.0.2"}')
    for path, reason in ((tmp_path / "missing.json", "No such file"), (bad, "components.schemas.Input")):
        args = ["build", str(project), "--openapi-schema", str(path), "-q", "--cache-dir", str(shared_cache)]
        result = subprocess.run(
            [sys.executable, "-m", "ocibuild", *args, "-o", str(tmp_path / "out")],
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO,
        )
        assert result.returncode == 2, result.stderr
        assert reason in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_the_predictor_is_imported_without_network_and_with_a_time_limit(
    project: Path, shared_cache: Path, monkeypatch
) -> None:
    probe = (
        "import socket\n\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=3).close()\n"
        "    REACHED = 'online'\nexcept OSError:\n    REACHED = 'offline'\n"
    )
    (project / "predict.py").write_text(probe + PREDICT.replace('default="a cat"', "default=REACHED"))
    image = build(project, shared_cache)
    properties = json.loads(image.config["config"]["Labels"]["run.cog.openapi_schema"])["components"]["schemas"][
        "Input"
    ]["properties"]
    assert properties["prompt"]["default"] == "offline"

    (project / "predict.py").write_text("import time\ntime.sleep(60)\n" + PREDICT)
    monkeypatch.setenv("OCIBUILD_SCHEMA_TIMEOUT", "2")
    with pytest.raises(BuildError, match="still running after 2 s; stopped"):
        build(project, shared_cache)


def test_values_made_by_build_run_are_seen(project: Path, shared_cache: Path) -> None:
    (project / "cog.yaml").write_text(
        'build:\n  python_version: "3.11"\n  run:\n'
        "    - \"mkdir -p /opt/zoo && printf 'tiny\\\\nhuge\\\\n' > /opt/zoo/models.txt\"\n"
        'run: "predict.py:Predictor"\n'
    )
    (project / "predict.py").write_text(
        "from cog import BasePredictor, Input\n\n"
        "NAMES = open('/opt/zoo/models.txt').read().split()\n\n"
        "class Predictor(BasePredictor):\n"
        "    def predict(self, model: str = Input(choices=NAMES, default=NAMES[0])) -> str:\n        return model\n"
    )
    image = build(project, shared_cache)
    label = json.loads(image.config["config"]["Labels"]["run.cog.openapi_schema"])
    bundled = json.loads(layer_files(image.layers[-1])["src/.cog/openapi_schema.json"])
    assert label == bundled and label["components"]["schemas"]["model"]["enum"] == ["tiny", "huge"]
    assert label["components"]["schemas"]["Input"]["properties"]["model"]["default"] == "tiny"
