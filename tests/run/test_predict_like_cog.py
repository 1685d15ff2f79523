"""``ocibuild predict`` behaves like ``cog predict``: ``-e``, ``--json @file``/``@-``, ``-o`` checked first, streamed
chunks printed as they arrive, progress while the model starts, one error prefix, list outputs with extensions.

The images are busybox plus the host's Python and the real runner bound in (as tests/run/test_predict.py)."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ocibuild import progress
from ocibuild.cli import make_parser
from ocibuild.cog.schema import generate_schema, openapi_json
from ocibuild.errors import BuildError, UserInputError
from ocibuild.oci import Entry, LayerBlob, Store, write_layer
from ocibuild.oci.image import Image
from ocibuild.run import predict
from ocibuild.run.inputs import read_json_arg
from ocibuild.run.outputs import ChunkPrinter, write_output
from tests.run.conftest import image_of
from tests.run.test_predict import PREFIX, REPO, VOLUMES

PREDICTOR = """
import os
import pathlib
import time

import cog
from cog import BasePredictor, ConcatenateIterator, Input, Path


class Predictor(BasePredictor):
    def setup(self) -> None:
        print("warming up")

    def predict(self, name: str = Input(default="GREETING"), fail: bool = False) -> str:
        print(f"looking up {name}")
        if fail:
            raise ValueError("boom")
        return os.environ.get(name, "unset")


class Streamer(BasePredictor):
    @cog.streaming
    def predict(self, gate: str = "/gate/go") -> ConcatenateIterator[str]:
        yield "first "
        deadline = time.monotonic() + 20
        while not pathlib.Path(gate).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield "second" if pathlib.Path(gate).exists() else "late"


class Pictures(BasePredictor):
    def predict(self, count: int = 2) -> list[Path]:
        out = []
        for i in range(count):
            path = Path(f"/tmp/p{i}.png")
            path.write_bytes(b"png%d" % i)
            out.append(path)
        return out
"""


def model_image(store: Store, base: LayerBlob, tmp_path: Path, cls: str) -> Image:
    project = tmp_path / f"project-{cls}"
    project.mkdir()
    (project / "predict.py").write_text(PREDICTOR)
    schema = openapi_json(generate_schema(project, f"predict.py:{cls}", None).openapi)
    code = write_layer(
        [
            Entry.symlink("lib", "usr/lib"),
            Entry.symlink("lib64", "usr/lib64"),
            Entry.file("src/predict.py", PREDICTOR.encode()),
            Entry.file("src/.cog/openapi_schema.json", schema.encode()),
        ],
        store,
    )
    return image_of(
        [base, code],
        env=[f"PATH={PREFIX}/bin:/bin", "PYTHONPATH=/runner", f"COG_PREDICT_TYPE_STUB=predict.py:{cls}"],
        cmd=["python3", "-m", "cog.server.http"],
        working_dir="/src",
        labels={"run.cog.openapi_schema": schema},
    )


def test_env_reaches_the_model_and_progress_is_shown(store: Store, base_layer: LayerBlob, tmp_path: Path, capsys):
    image = model_image(store, base_layer, tmp_path, "Predictor")
    log = io.StringIO()
    with progress.use(progress.Reporter(stream=log, mode="plain")):
        result = predict(image, store, [], None, None, env=["GREETING=hello from -e"], volumes=VOLUMES)
    assert result.output == "hello from -e"
    captured = capsys.readouterr()
    assert captured.out == "hello from -e\n"
    assert "warming up" in captured.err and "looking up GREETING" in captured.err
    steps = log.getvalue()
    assert steps.index("starting the model container") < steps.index("running setup()") < steps.index("model ready")


def test_a_failed_prediction_says_failed_once(store: Store, base_layer: LayerBlob, tmp_path: Path, capsys) -> None:
    image = model_image(store, base_layer, tmp_path, "Predictor")
    with pytest.raises(BuildError) as caught:
        predict(image, store, [], json.dumps({"fail": True}), None, volumes=VOLUMES)
    assert str(caught.value) == "prediction failed: ValueError: boom"
    assert caught.value.exit_code == 1
    assert "ValueError: boom" in capsys.readouterr().err  # the model's logs and traceback


def test_streamed_chunks_are_printed_before_the_prediction_ends(
    store: Store, base_layer: LayerBlob, tmp_path: Path, capsys, monkeypatch
) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    printed = []
    original = ChunkPrinter.__call__

    def print_then_open_the_gate(self, chunk):
        original(self, chunk)
        printed.append(chunk)
        (gate / "go").touch()  # the model only yields "second" once it sees this

    monkeypatch.setattr(ChunkPrinter, "__call__", print_then_open_the_gate)
    image = model_image(store, base_layer, tmp_path, "Streamer")
    result = predict(image, store, [], None, None, volumes=[*VOLUMES, f"{gate}:/gate"])
    assert printed == ["first ", "second"]
    assert result.output == ["first ", "second"]
    assert capsys.readouterr().out == "first second\n"


def test_list_outputs_keep_their_extensions(store: Store, base_layer: LayerBlob, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    image = model_image(store, base_layer, tmp_path, "Pictures")
    result = predict(image, store, [], None, tmp_path / "picture", volumes=VOLUMES)
    assert result.files == [tmp_path / "picture.0.png", tmp_path / "picture.1.png"]
    assert (tmp_path / "picture.1.png").read_bytes() == b"png1"


def test_output_path_is_checked_before_anything_runs(store: Store, base_layer: LayerBlob, tmp_path: Path) -> None:
    image = image_of([base_layer])
    with pytest.raises(UserInputError, match="is a directory"):
        predict(image, store, [], None, tmp_path)
    with pytest.raises(UserInputError, match="does not exist"):
        predict(image, store, [], None, tmp_path / "missing" / "out.png")
    assert not (store.root / "rootfs").exists()


def test_json_from_a_file_or_stdin(tmp_path: Path, monkeypatch) -> None:
    inputs = tmp_path / "inputs.json"
    inputs.write_text('{"name": "HOME"}')
    assert read_json_arg(f"@{inputs}") == '{"name": "HOME"}'
    monkeypatch.setattr("sys.stdin", io.StringIO('{"fail": false}'))
    assert read_json_arg("@-") == '{"fail": false}'
    assert read_json_arg('{"a": 1}') == '{"a": 1}'
    with pytest.raises(UserInputError, match=r"--json @.*missing.json: cannot read"):
        read_json_arg(f"@{tmp_path / 'missing.json'}")


def test_predict_defaults_to_the_current_directory() -> None:
    assert make_parser().parse_args(["predict", "-i", "x=1"]).image == "."


def test_a_list_written_to_a_path_without_suffix_gets_the_files_extension(tmp_path: Path) -> None:
    jpeg = "data:image/jpeg;base64," + base64.b64encode(b"jpg").decode()
    assert write_output([jpeg], tmp_path / "out", None) == (None, [tmp_path / "out.0.jpg"])


@pytest.mark.integration
def test_cli_predict_in_the_project_directory_with_json_on_stdin_and_env(tmp_path: Path, shared_cache: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(REPO / "examples" / "hello-world", project)
    (project / "predict.py").write_text(
        "import os\nfrom cog import BasePredictor\n\n\nclass Predictor(BasePredictor):\n"
        "    def predict(self, text: str) -> str:\n        return f\"{os.environ['GREETING']} {text}\"\n"
    )
    command = [sys.executable, "-m", "ocibuild", "predict", "--json", "@-", "-e", "GREETING=hi", "--cache-dir"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [*command, str(shared_cache)], input='{"text": "there"}', capture_output=True, text=True, cwd=project, env=env
    )
    assert (result.returncode, result.stdout) == (0, "hi there\n"), result.stderr
    refused = subprocess.run(
        [*command, str(shared_cache), "-o", str(tmp_path)], capture_output=True, text=True, env=env
    )
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [f"error: -o {tmp_path}: is a directory; give a file path"]
