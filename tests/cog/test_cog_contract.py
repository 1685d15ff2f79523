"""The image contract: env, command, ports, labels and git annotations for a Cog image."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ocibuild.cog.config import load_config
from ocibuild.cog.contract import git_annotations, image_contract
from ocibuild.cog.schema import generate_schema
from ocibuild.errors import UserInputError

PREDICTORS = Path(__file__).parent / "predictors"


def project(tmp_path: Path, case: str, yaml: str) -> Path:
    for source in (PREDICTORS / case).iterdir():
        if source.is_file():
            (tmp_path / source.name).write_text(source.read_text())
    (tmp_path / "cog.yaml").write_text(yaml)
    return tmp_path / "cog.yaml"


def contract_for(path: Path, **kwargs: str):
    loaded = load_config(path)
    schema = generate_schema(loaded.project_dir, loaded.predictor_ref, loaded.train_ref)
    return image_contract(loaded, schema, kwargs.get("freeze", "cog==0.22.0\n"), kwargs.get("python", "/usr/local/bin"))


def test_cpu_contract(tmp_path: Path) -> None:
    path = project(
        tmp_path,
        "basic_class",
        'build:\n  python_version: "3.12"\nrun: predict.py:Predictor\nenvironment: [Z=1, A=2]\n',
    )
    contract = contract_for(path)
    assert contract.env == [
        "PATH=/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "PYTHONUNBUFFERED=1",
        "LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu:/usr/local/nvidia/lib64:/usr/local/nvidia/bin",
        "NVIDIA_DRIVER_CAPABILITIES=all",
        "A=2",
        "XDG_CACHE_HOME=/src/.cache",
        "Z=1",
        "COG_PREDICT_TYPE_STUB=predict.py:Predictor",
    ]
    assert contract.cmd == ["python", "-m", "cog.server.http"]
    assert contract.entrypoint is None
    assert contract.working_dir == "/src"
    assert contract.exposed_ports == {"5000/tcp": {}}
    labels = contract.labels
    assert set(labels) == {
        "run.cog.version",
        "run.cog.config",
        "run.cog.openapi_schema",
        "run.cog.pip_freeze",
        "run.cog.has_init",
    }
    assert labels["run.cog.has_init"] == "true"
    assert labels["run.cog.pip_freeze"] == "cog==0.22.0\n"
    assert json.loads(labels["run.cog.config"])["predict"] == "predict.py:Predictor"
    assert json.loads(labels["run.cog.openapi_schema"])["components"]["schemas"]["Input"]["title"] == "Input"


def test_gpu_train_and_concurrency(tmp_path: Path) -> None:
    path = project(
        tmp_path,
        "concurrent_async",
        'build:\n  python_version: "3.12"\n  gpu: true\nrun: predict.py:Runner\ntrain: train.py:train\n',
    )
    (tmp_path / "train.py").write_text("def train(steps: int) -> str: ...\n")
    contract = contract_for(path, python="/opt/venv/bin/python3")
    assert contract.env[0].startswith("PATH=/opt/venv/bin:")
    assert contract.env[2:] == [
        "LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu:/usr/local/nvidia/lib64:/usr/local/nvidia/bin",
        "NVIDIA_DRIVER_CAPABILITIES=all",
        "NVIDIA_VISIBLE_DEVICES=all",
        "XDG_CACHE_HOME=/src/.cache",
        "COG_PREDICT_TYPE_STUB=predict.py:Runner",
        "COG_TRAIN_TYPE_STUB=train.py:train",
        "COG_MAX_CONCURRENCY=4",
    ]
    config = json.loads(contract.labels["run.cog.config"])
    assert config["concurrency"] == {"max": 4}
    assert (config["build"]["cuda"], config["build"]["cudnn"]) == ("11.8", "8")
    assert (
        contract.labels["run.cog.version"] == json.loads(contract.labels["run.cog.openapi_schema"])["info"]["version"]
    )


def test_arm64_images_point_at_their_own_library_directory(tmp_path: Path) -> None:
    path = project(tmp_path, "basic_class", 'build:\n  python_version: "3.12"\nrun: predict.py:Predictor\n')
    loaded = load_config(path)
    schema = generate_schema(loaded.project_dir, loaded.predictor_ref, loaded.train_ref)
    contract = image_contract(loaded, schema, "", "/usr/bin/python3", arch="arm64")
    assert "LD_LIBRARY_PATH=/usr/lib/aarch64-linux-gnu:/usr/local/nvidia/lib64:/usr/local/nvidia/bin" in contract.env


def test_concurrency_above_one_needs_async(tmp_path: Path) -> None:
    path = project(
        tmp_path, "basic_class", 'build:\n  python_version: "3.12"\nrun: predict.py:Predictor\nconcurrency: {max: 2}\n'
    )
    with pytest.raises(UserInputError, match=r"^cog.yaml: concurrency.max: 2 needs an async def run\(\)$"):
        contract_for(path)


def test_git_annotations(tmp_path: Path) -> None:
    assert git_annotations(tmp_path) == {}
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "f").write_text("x")
    subprocess.run([*git, "add", "f"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    subprocess.run([*git, "remote", "add", "origin", "https://user:secret@example.com/acme/model.git"], check=True)
    revision = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    assert git_annotations(tmp_path) == {
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.source": "https://example.com/acme/model.git",
    }


def test_environment_values_expand_earlier_ones_in_order(tmp_path: Path) -> None:
    text = (
        'build:\n  python_version: "3.12"\nrun: predict.py:Predictor\nenvironment:\n'
        "  - MY_DATA_DIR=/src/data\n  - FINETUNED=$MY_DATA_DIR/finetuned\n  - EXTRA=${PATH}:/opt\n"
        "  - LATER=$DEFINED_BELOW/x\n  - DEFINED_BELOW=1\n  - XDG_CACHE_HOME=/cache\n"
    )
    env = dict(item.split("=", 1) for item in contract_for(project(tmp_path, "basic_class", text)).env)
    assert env["FINETUNED"] == "/src/data/finetuned"
    assert env["EXTRA"] == env["PATH"] + ":/opt"
    assert env["LATER"] == "/x", "order is significant: a later variable is not known yet"
    assert env["XDG_CACHE_HOME"] == "/cache"
