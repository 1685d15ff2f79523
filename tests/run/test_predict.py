"""``predict`` end to end: the real runner (layers/runner) inside a container under runc.

The busybox image has no Python, so the host's interpreter, /usr and the runner are bound in read-only;
the model code and its schema are a layer of the image, as in a built Cog image.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest

from ocibuild.errors import BuildError, UserInputError
from ocibuild.oci import Entry, LayerBlob, Store, write_layer
from ocibuild.oci.image import Image
from ocibuild.run import predict
from tests.run.conftest import image_of
from tests.run.schema import SCHEMA

REPO = Path(__file__).resolve().parents[2]
PREFIX = Path(sys.base_prefix).resolve()
VOLUMES = [f"{PREFIX}:{PREFIX}:ro", "/usr:/usr:ro", f"{REPO / 'layers/runner'}:/runner:ro"]
PREDICTOR = """
import shutil
from cog import BasePredictor, Input, Path


class Predictor(BasePredictor):
    def setup(self) -> None:
        print("loading the model")

    def predict(self, text: str, count: int = 1, scale: float = 1.0, loud: bool = False, style: str = "plain",
                tags: list[int] = None, image: Path = None) -> str:
        if image is not None:
            out = Path("/tmp/out.png")
            shutil.copy(image, out)
            return out
        return (text.upper() if loud else text) * count


class Broken(BasePredictor):
    def setup(self) -> None:
        print("about to fail")
        raise RuntimeError("boom\\nmore")

    def predict(self, text: str) -> str:
        return text
"""


def model_image(store: Store, base: LayerBlob, stub: str = "predict.py:Predictor") -> Image:
    code = write_layer(
        [
            Entry.symlink("lib", "usr/lib"),
            Entry.symlink("lib64", "usr/lib64"),
            Entry.file("src/predict.py", PREDICTOR.encode()),
            Entry.file("src/.cog/openapi_schema.json", json.dumps(SCHEMA).encode()),
        ],
        store,
    )
    return image_of(
        [base, code],
        env=[f"PATH={PREFIX}/bin:/bin", "PYTHONPATH=/runner", f"COG_PREDICT_TYPE_STUB={stub}"],
        cmd=["python3", "-m", "cog.server.http"],
        working_dir="/src",
        labels={"run.cog.openapi_schema": json.dumps(SCHEMA)},
    )


def test_predict_prints_text_and_writes_files(store: Store, base_layer: LayerBlob, tmp_path: Path, capsys) -> None:
    image = model_image(store, base_layer)
    result = predict(image, store, ["text=ab", "count=2", "loud=true"], None, None, volumes=VOLUMES)
    captured = capsys.readouterr()
    assert (result.status, result.output) == ("succeeded", "ABAB")
    assert captured.out == "ABAB\n"
    assert "loading the model" in captured.err
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"\x89PNG fake")
    out = tmp_path / "result.png"
    result = predict(image, store, ["text=x", f"image=@{photo}"], None, out, volumes=VOLUMES)
    assert result.files == [out] and out.read_bytes() == b"\x89PNG fake"
    assert base64.b64decode(result.output.split(",", 1)[1]) == b"\x89PNG fake"
    assert not list((store.root / "tmp").iterdir()), "container stopped and cleaned up"


def test_bad_input_is_refused_before_anything_runs(store: Store, base_layer: LayerBlob) -> None:
    image = model_image(store, base_layer)
    with pytest.raises(UserInputError, match='unknown input "prompt"'):
        predict(image, store, ["prompt=x"], None, None, volumes=VOLUMES)
    assert not (store.root / "rootfs").exists()


def test_setup_failure_is_a_one_line_error(store: Store, base_layer: LayerBlob, capsys) -> None:
    image = model_image(store, base_layer, stub="predict.py:Broken")
    with pytest.raises(BuildError, match=r"model setup failed \(SETUP_FAILED\)") as info:
        predict(image, store, ["text=x"], None, None, volumes=VOLUMES)
    assert "\n" not in str(info.value)
    assert str(info.value).endswith("Setup failed: RuntimeError: boom")  # the exception's first line
    assert "about to fail" in capsys.readouterr().err


def test_a_container_that_dies_is_reported(store: Store, base_layer: LayerBlob) -> None:
    image = model_image(store, base_layer)
    with pytest.raises(BuildError, match="exited with code 127 before answering"):
        predict(image, store, ["text=x"], None, None)  # no Python bound in: the runner cannot start
    assert not list((store.root / "tmp").iterdir())
