"""The GPU example (``gpu: true``, CUDA torch): opt-in, because its wheels (torch + nvidia-*) are several GB.

``OCIBUILD_SLOW=1 pytest tests/e2e -m slow`` builds it from its committed lock (PyPI's CUDA 12.8 torch and its
nvidia-* wheels), checks the GPU contract of the image, and predicts with it: on a GPU when ``nvidia-smi`` works
(``--gpus all``), else on the CPU, where the model reports ``cpu``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.e2e.conftest import Session
from tests.e2e.support import layout_config, ocibuild

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("OCIBUILD_SLOW") != "1", reason="GBs of CUDA wheels: set OCIBUILD_SLOW=1"),
]


def _has_gpu() -> bool:
    smi = shutil.which("nvidia-smi")
    return bool(smi) and subprocess.run([smi, "-L"], capture_output=True).returncode == 0


def test_gpu_example(e2e: Session) -> None:
    built = e2e.build("gpu-torch")
    config = layout_config(built.layout)["config"]
    assert "NVIDIA_VISIBLE_DEVICES=all" in config["Env"]
    assert json.loads(config["Labels"]["run.cog.config"])["build"]["gpu"] is True

    gpu = _has_gpu()
    result = ocibuild("predict", built.layout, "-q", "-i", "size=64", *(["--gpus", "all"] if gpu else []),
                      *e2e.cache_args(), env=e2e.env, timeout=1800)  # fmt: skip
    output = json.loads(result.stdout)
    assert output["trace"] == 6 * 64
    assert output["torch_version"].startswith("2.9.1")
    assert output["cuda_available"] is gpu
    assert (output["device"] != "cpu") is gpu
