"""cog.yaml: the model, Cog's validation rules (one failing example each, exact message), deprecations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocibuild.cog.compat import COG_VERSION
from ocibuild.cog.config import completed_config_json, effective_concurrency, load_config
from ocibuild.errors import UserInputError

PY = 'build:\n  python_version: "3.12"\n'


def write(tmp_path: Path, text: str, requirements: str | None = None) -> Path:
    path = tmp_path / "cog.yaml"
    path.write_text(text)
    if requirements is not None:
        (tmp_path / "requirements.txt").write_text(requirements)
    return path


def test_full_config_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
build:
  python_version: 3.10
  gpu: true
  python_requirements: requirements.txt
  system_packages: [ffmpeg]
  run:
    - echo one
    - command: pip download private
      mounts:
        - {type: secret, id: pip, target: /etc/pip.conf}
  sdk_version: "0.22.0"
run: "predict.py:Predictor"
train: "train.py:train"
model: r8.im/acme/model
concurrency:
  default_target: 2
environment:
  - B=2
  - A=x=y
weights:
  - name: base
    target: /src/weights
    source: {uri: "hf://acme/base", include: ["*.safetensors"]}
  - name: lora.v1
    target: /lora
    source:
      - uri: https://example.com/lora.bin
""",
        requirements="torch==2.7.1\n",
    )
    loaded = load_config(path)
    config = loaded.config
    assert config.build.python_version == "3.10"
    assert [r.command for r in config.build.run_commands()] == ["echo one", "pip download private"]
    assert config.environment_pairs() == {"B": "2", "A": "x=y"}
    assert loaded.predictor_ref == "predict.py:Predictor" and loaded.train_ref == "train.py:train"
    assert loaded.requirements_path == tmp_path.resolve() / "requirements.txt"
    assert loaded.requirement_lines() == ["torch==2.7.1"]
    assert (loaded.cuda.cuda, loaded.cuda.cudnn, loaded.cuda.torch_index_suffix) == ("12.8", "9", "cu128")
    assert loaded.warnings == [
        "cog.yaml:11:16: build.sdk_version '0.22.0' is not installed: the image runs ocibuild's bundled runner, "
        f"which serves the cog {COG_VERSION} API"
    ]


def test_completed_config_json_matches_cogs_shape(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        PY + "  gpu: true\n  python_packages: [torch==2.3.1]\n  pre_install: [echo hi]\n"
        "predict: predict.py:Predictor\nenvironment: [X=1]\n",
    )
    loaded = load_config(path)
    text = completed_config_json(loaded, concurrency_max=3)
    assert " " not in text.replace("echo hi", "")
    assert json.loads(text) == {
        "build": {
            "gpu": True,
            "python_version": "3.12",
            "python_packages": ["torch==2.3.1"],
            "pre_install": ["echo hi"],
            "cuda": "12.1",
            "cudnn": "8",
        },
        "predict": "predict.py:Predictor",
        "concurrency": {"max": 3},
        "environment": ["X=1"],
    }
    assert list(json.loads(text)) == ["build", "predict", "concurrency", "environment"]


def test_run_key_is_serialised_as_predict_and_cpu_has_no_cuda(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, PY + "run: predict.py:P\n"))
    assert json.loads(completed_config_json(loaded)) == {
        "build": {"python_version": "3.12"},
        "predict": "predict.py:P",
    }
    assert loaded.cuda is None


def test_concurrency_max_wins_over_the_decorator(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, PY + "concurrency:\n  max: 2\n"))
    assert effective_concurrency(loaded, 8) == 2
    assert effective_concurrency(load_config(write(tmp_path, PY)), 8) == 8


DEPRECATIONS = [
    (PY + "predict: predict.py:P\n", "cog.yaml:3:1: predict is deprecated; use run"),
    (
        PY + "  python_packages: [numpy]\n",
        "cog.yaml:3:3: build.python_packages is deprecated; use build.python_requirements",
    ),
    (PY + "  pre_install: [echo]\n", "cog.yaml:3:3: build.pre_install is deprecated; use build.run"),
    (
        PY + "concurrency:\n  max: 1\n",
        "cog.yaml:4:3: concurrency.max is deprecated; use @cog.concurrent(max=N) on run()",
    ),
]


@pytest.mark.parametrize(("text", "warning"), DEPRECATIONS)
def test_deprecations_warn_with_position(tmp_path: Path, text: str, warning: str) -> None:
    assert load_config(write(tmp_path, text)).warnings == [warning]


# Keys Cog's typed loader drops: a warning each (with its position and a hint), never an error.
IGNORED = {
    "unknown top-level key": (
        PY + "prdict: a.py:P\n",
        "cog.yaml:3:1: prdict: unknown key, ignored; did you mean 'predict'?",
    ),
    "build key at top level": (
        'python_version: "3.12"\n' + PY,
        "cog.yaml:1:1: python_version: unknown key, ignored; did you mean 'build.python_version'?",
    ),
    "unknown key without a close match": (
        PY + "zzz: 1\n",
        "cog.yaml:3:1: zzz: unknown key, ignored; expected one of: build, image, model, run, predict, train, "
        "concurrency, environment, weights",
    ),
    "removed key": (
        PY + "  fast: true\n",
        "cog.yaml:3:3: build.fast: unknown key, ignored; expected one of: python_version, gpu, cuda, cudnn, "
        "python_requirements, python_packages, system_packages, run, pre_install, sdk_version",
    ),
}


@pytest.mark.parametrize("case", list(IGNORED))
def test_unknown_keys_are_ignored_with_a_warning_as_cog_does(tmp_path: Path, case: str) -> None:
    text, warning = IGNORED[case]
    assert load_config(write(tmp_path, text)).warnings == [warning]


# Each rule of cog.yaml with one failing example and its exact one-line message.
RULES = {
    "not YAML": ("build: [1, 2\n", "cog.yaml:2:1: invalid YAML: expected ',' or ']', but got '<stream end>'"),
    "empty file": ("", "cog.yaml:1:1: (root): file is empty; expected a mapping with a build section"),
    "comments only": ("# nothing\n", "cog.yaml:1:1: (root): file is empty; expected a mapping with a build section"),
    "top level is a list": ("- a\n- b\n", "cog.yaml:1:1: (root): must be a mapping, not a list"),
    "top level is a string": ("hello\n", "cog.yaml:1:1: (root): must be a mapping, not a string"),
    "build missing": ("run: predict.py:P\n", "cog.yaml:1:1: build: is required"),
    "python_version missing": ("build:\n  gpu: false\n", "cog.yaml:2:3: build.python_version: is required"),
    "unknown key with hint": (
        'build:\n  pyton_version: "3.12"\n',
        "cog.yaml:2:3: build.pyton_version: unknown key; did you mean 'python_version'?",
    ),
    "python_version format": (
        'build:\n  python_version: "3"\n',
        "cog.yaml:2:19: build.python_version: must be major.minor[.patch], e.g. '3.12'",
    ),
    "python_version minimum": (
        'build:\n  python_version: "3.9"\n',
        "cog.yaml:2:19: build.python_version: minimum supported Python version is 3.10",
    ),
    "python_version type": ("build:\n  python_version: [3]\n", "cog.yaml:2:19: build.python_version: must be a string"),
    "gpu type": (PY + "  gpu: yes please\n", "cog.yaml:3:8: build.gpu: must be a boolean (true or false)"),
    "cuda format": (
        PY + '  gpu: true\n  cuda: "12"\n',
        "cog.yaml:4:9: build.cuda: must be major.minor[.patch], e.g. '12.8'",
    ),
    "cuda minimum": (
        PY + '  gpu: true\n  cuda: "10.2"\n',
        "cog.yaml:4:9: build.cuda: minimum supported CUDA version is 11",
    ),
    "cuda unknown": (
        PY + '  gpu: true\n  cuda: "12.7"\n',
        "cog.yaml:4:9: build.cuda: CUDA 12.7 is not supported; known versions: 11.0, 11.1, 11.2, 11.3, 11.4, "
        "11.5, 11.6, 11.7, 11.8, 12.0, 12.1, 12.2, 12.3, 12.4, 12.5, 12.6, 12.8, 12.9, 13.0, 13.1, 13.2",
    ),
    "cudnn pair": (
        PY + '  gpu: true\n  cuda: "12.8"\n  cudnn: "8"\n',
        "cog.yaml:5:10: build.cudnn: CUDA 12.8 is not compatible with cuDNN 8; compatible: 9",
    ),
    "torch range with no known CUDA build on gpu": (
        PY + '  gpu: true\n  python_packages: ["torch>=9"]\n',
        "cog.yaml:3:8: build.gpu: Cog doesn't know which CUDA version is compatible with torch>=9; set build.cuda",
    ),
    "torch unknown": (
        PY + "  gpu: true\n  python_packages: [torch==1.2.3]\n",
        "cog.yaml:3:8: build.gpu: Cog doesn't know which CUDA version is compatible with torch==1.2.3; set build.cuda",
    ),
    "tensorflow unknown": (
        PY + "  gpu: true\n  python_packages: [tensorflow==1.0.0]\n",
        "cog.yaml:3:8: build.gpu: Cog doesn't know which CUDA version is compatible with tensorflow==1.0.0; "
        "set build.cuda",
    ),
    "requirements and packages": (
        PY + "  python_requirements: requirements.txt\n  python_packages: [numpy]\n",
        "cog.yaml:4:3: build.python_packages: only one of python_packages or python_requirements can be set, not both",
    ),
    "requirements missing": (
        PY + "  python_requirements: reqs.txt\n",
        "cog.yaml:3:24: build.python_requirements: file does not exist: reqs.txt",
    ),
    "run command newline": (
        PY + '  run:\n    - "echo a\\necho b"\n',
        "cog.yaml:4:7: build.run[0]: command must be a single line (no newline)",
    ),
    "run long-form newline": (
        PY + '  run:\n    - command: "a\\nb"\n',
        "cog.yaml:4:16: build.run[0].command: command must be a single line (no newline)",
    ),
    "run unknown key": (
        PY + "  run:\n    - comand: x\n",
        "cog.yaml:4:7: build.run[0].comand: unknown key; did you mean 'command'?",
    ),
    "mount type": (
        PY + "  run:\n    - command: x\n      mounts: [{type: cache, id: a, target: /b}]\n",
        "cog.yaml:5:23: build.run[0].mounts[0].type: Input should be 'secret'",
    ),
    "mount missing id": (
        PY + "  run:\n    - command: x\n      mounts: [{type: secret, target: /b}]\n",
        "cog.yaml:5:16: build.run[0].mounts[0].id: is required",
    ),
    "sdk_version format": (
        PY + "  sdk_version: latest\n",
        "cog.yaml:3:16: build.sdk_version: must be a PEP 440 version or 'prerelease'",
    ),
    "sdk_version minimum": (
        PY + '  sdk_version: "0.15.2"\n',
        "cog.yaml:3:16: build.sdk_version: minimum supported cog SDK version is 0.16.0",
    ),
    "run and predict": (
        PY + "run: a.py:P\npredict: a.py:P\n",
        "cog.yaml:4:1: predict: run and predict are mutually exclusive; use run",
    ),
    "run ref shape": (PY + "run: predict:Predictor\n", "cog.yaml:3:6: run: must be in the form 'run.py:Runner'"),
    "predict ref shape": (
        PY + "predict: a.py:b.py:C\n",
        "cog.yaml:3:10: predict: must be in the form 'predict.py:Predictor'",
    ),
    "train ref shape": (PY + "train: train.py\n", "cog.yaml:3:8: train: must be in the form 'train.py:Trainer'"),
    "image and model": (PY + "image: a/b\nmodel: a/b\n", "cog.yaml:4:1: model: image and model are mutually exclusive"),
    "model with tag": (
        PY + "model: r8.im/a/b:v1\n",
        "cog.yaml:3:8: model: must be a repository without a tag or digest, e.g. 'r8.im/user/model'",
    ),
    "model name": (PY + "model: r8.im/A/B\n", "cog.yaml:3:8: model: 'r8.im/A/B' is not a valid repository name"),
    "weights without model": (
        PY + "weights:\n  - {name: a, target: /w, source: {uri: hf://x/y}}\n",
        "cog.yaml:3:1: weights: requires model to be set",
    ),
    "concurrency minimum": (PY + "concurrency:\n  max: 0\n", "cog.yaml:4:8: concurrency.max: must be at least 1"),
    "concurrency python": (
        'build:\n  python_version: "3.10"\nconcurrency:\n  max: 2\n',
        "cog.yaml:4:8: concurrency.max: concurrency above 1 requires Python 3.11 or newer",
    ),
    "concurrency type": (PY + "concurrency:\n  max: many\n", "cog.yaml:4:8: concurrency.max: must be an integer"),
    "environment format": (
        PY + "environment:\n  - 1ABC=x\n",
        "cog.yaml:4:5: environment[0]: '1ABC=x' is not in the NAME=value format",
    ),
    "environment without value": (
        PY + "environment:\n  - ABC\n",
        "cog.yaml:4:5: environment[0]: 'ABC' is not in the NAME=value format",
    ),
    "environment duplicate": (
        PY + "environment: [A=1, A=2]\n",
        "cog.yaml:3:20: environment[1]: environment variable 'A' is already defined",
    ),
    "environment type": (PY + "environment: {A: 1}\n", "cog.yaml:3:14: environment: must be a list"),
    **{
        f"environment deny {name}": (
            PY + f"environment: [{name}=1]\n",
            f"cog.yaml:3:15: environment[0]: environment variable {name!r} is reserved and cannot be set",
        )
        for name in (
            "PATH",
            "LD_LIBRARY_PATH",
            "PYTHONPATH",
            "VIRTUAL_ENV",
            "PYTHONUNBUFFERED",
            "LIBRARY_PATH",
            "HF_ENDPOINT",
            "HF_HUB_ENABLE_HF_TRANSFER",
            "R8_X",
            "REPLICATE_X",
            "CUDA_X",
            "NVIDIA_X",
            "NV_X",
            "PGET_X",
            "KUBERNETES_X",
        )
    },
}
MODEL = PY + "model: r8.im/a/b\nweights:\n"
WEIGHT_RULES = {
    "weights name": (
        MODEL + "  - {name: Big, target: /w, source: {uri: hf://x}}\n",
        "cog.yaml:5:12: weights[0].name: must match ^[a-z0-9]+([._-][a-z0-9]+)*$",
    ),
    "weights duplicate name": (
        MODEL + "  - {name: a, target: /w, source: {uri: hf://x}}\n  - {name: a, target: /v, source: {uri: hf://x}}\n",
        "cog.yaml:6:12: weights[1].name: duplicate weight name 'a'",
    ),
    "weights relative target": (
        MODEL + "  - {name: a, target: w, source: {uri: hf://x}}\n",
        "cog.yaml:5:23: weights[0].target: must be an absolute path",
    ),
    "weights root target": (
        MODEL + "  - {name: a, target: /, source: {uri: hf://x}}\n",
        "cog.yaml:5:23: weights[0].target: must not be /",
    ),
    "weights overlapping targets": (
        MODEL
        + "  - {name: a, target: /w, source: {uri: hf://x}}\n  - {name: b, target: /w/sub, source: {uri: hf://x}}\n",
        "cog.yaml:6:23: weights[1].target: overlaps weights[0].target /w",
    ),
    "weights empty source list": (
        MODEL + "  - {name: a, target: /w, source: []}\n",
        "cog.yaml:5:35: weights[0].source: must not be an empty list",
    ),
    "weights scheme": (
        MODEL + "  - {name: a, target: /w, source: {uri: s3://b/k}}\n",
        "cog.yaml:5:41: weights[0].source.uri: unsupported scheme 's3'; use hf://, file://, https://",
    ),
    "weights pattern": (
        MODEL + "  - {name: a, target: /w, source: {uri: hf://x, include: ['!a']}}\n",
        "cog.yaml:5:59: weights[0].source.include[0]: pattern must be non-empty, without a leading '!' or a '\\'",
    ),
    "weights source unknown key": (
        MODEL + "  - {name: a, target: /w, source: {url: hf://x}}\n",
        "cog.yaml:5:36: weights[0].source.url: unknown key; did you mean 'uri'?",
    ),
}


@pytest.mark.parametrize("case", list(RULES) + list(WEIGHT_RULES))
def test_rule_violation_is_one_line(tmp_path: Path, case: str) -> None:
    text, message = {**RULES, **WEIGHT_RULES}[case]
    (tmp_path / "requirements.txt").write_text("")
    with pytest.raises(UserInputError) as caught:
        load_config(write(tmp_path, text))
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 2


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"^cog.yaml: file not found: "):
        load_config(tmp_path / "cog.yaml")


def test_error_names_the_config_file_used(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text("build: {}\n")
    with pytest.raises(UserInputError, match=r"^other.yaml:1:8: build.python_version: is required$"):
        load_config(path)
