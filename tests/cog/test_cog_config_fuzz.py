"""Fuzz the cog.yaml loader: any input gives a config or a one-line UserInputError, never another exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocibuild.cog.config import load_config
from ocibuild.errors import UserInputError

KEYS = st.sampled_from(
    [
        "build",
        "python_version",
        "gpu",
        "cuda",
        "cudnn",
        "run",
        "predict",
        "train",
        "image",
        "model",
        "weights",
        "environment",
        "concurrency",
        "max",
        "name",
        "target",
        "source",
        "uri",
        "command",
        "mounts",
        "type",
        "x",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["3.12", "3.9", "12.8", "predict.py:P", "A=1", "PATH=x", "/w", "hf://a/b", "secret"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=20,
)
YAMLISH = st.text(alphabet=st.sampled_from(list("build:python_version \n-[]{}'\"&*!#%@`|>3.12?,\t\\")), max_size=80)


def check(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cog.yaml"
        path.write_text(text)
        try:
            load_config(path)
        except UserInputError as exc:
            message = str(exc)
            assert message and "\n" not in message, message
            assert message.startswith("cog.yaml")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(YAMLISH)
def test_yaml_like_text(text: str) -> None:
    check(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(KEYS, VALUES, max_size=6))
def test_random_documents(document: dict) -> None:
    check(yaml.safe_dump(document))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["python_version", "gpu", "cuda", "cudnn", "run", "python_packages", "x"]), VALUES, max_size=5
    )
)
def test_random_build_sections(build: dict) -> None:
    check(yaml.safe_dump({"build": build, "run": "predict.py:P"}))


def test_hostile_yaml() -> None:
    for text in (
        "a: &a [*a]\n",
        "!!python/object:os.system x\n",
        "a: !!timestamp 2001-13-45\n",
        "\x00",
        "? [a]\n: b\n",
        "build: &b {python_version: '3.12', gpu: *b}\n",
        "build:\n  python_version: .inf\n",
    ):
        check(text)
