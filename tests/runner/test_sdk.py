"""The ``cog`` SDK surface, and the promise that the runner is standard-library only on Python 3.10+."""

from __future__ import annotations

import glob
import os
import subprocess
import sys

import pytest

import cog
from tests.runner.harness import RUNNER_ROOT, Server

SDK_NAMES = [
    "BasePredictor", "BaseRunner", "Input", "Path", "File", "URLFile", "URLPath", "Secret", "ConcatenateIterator",
    "AsyncConcatenateIterator", "BaseModel", "current_scope", "emit_metric", "streaming", "concurrent",
    "CancelationException", "ExperimentalFeatureWarning", "__version__",
]  # fmt: skip


def test_sdk_exports_cogs_names():
    for name in SDK_NAMES:
        assert hasattr(cog, name), name
    assert issubclass(cog.BasePredictor, cog.BaseRunner)
    assert issubclass(cog.CancelationException, BaseException)
    assert not issubclass(cog.CancelationException, Exception)
    assert issubclass(cog.ExperimentalFeatureWarning, FutureWarning)


def test_base_model_is_a_dataclass_from_annotations():
    class Output(cog.BaseModel):
        text: str
        score: float = 0.5

    assert Output("hi") == Output(text="hi", score=0.5)
    with pytest.raises(TypeError):
        Output()


def test_secret_hides_its_value():
    secret = cog.Secret("s3cret")
    assert str(secret) == "**********"
    assert "s3cret" not in repr(secret)
    assert secret.get_secret_value() == "s3cret"


def test_input_rejects_default_factory():
    with pytest.raises(TypeError):
        cog.Input(default_factory=list)
    assert cog.Input(default=3, ge=1).default == 3


def test_concurrent_decorator_validates():
    async def handler():
        return None

    assert cog.concurrent(max=4)(handler).__cog_concurrent_max__ == 4
    with pytest.raises(TypeError):
        cog.concurrent(max=2)(lambda: None)
    with pytest.raises(ValueError):
        cog.concurrent(max=0)


def test_current_scope_outside_a_prediction_is_a_no_op():
    scope = cog.current_scope()
    scope.record_metric("tokens", 3)
    assert scope.context == {}
    assert dict(cog.current_scope().metrics) == {}
    with pytest.raises(ValueError):
        scope.record_metric("predict_time", 1)


def test_metric_modes_as_coglet_takes_them():
    scope = cog.current_scope()
    scope.record_metric("count", 1, mode="incr")
    scope.record_metric("count", 2, mode="increment")
    scope.record_metric("seen", "a", mode="append")
    assert (scope.metrics["count"], scope.metrics["seen"]) == (3, ["a"])
    with pytest.raises(TypeError, match="Invalid metric mode"):
        scope.record_metric("count", 1, mode="add")
    with pytest.raises(TypeError, match="increment mode requires an int or float"):
        scope.record_metric("count", "1", mode="incr")


def test_path_validate_decodes_data_uris():
    path = cog.Path.validate("data:text/plain;base64,aGVsbG8=")
    assert path.read_text() == "hello"
    assert isinstance(cog.URLPath(source="https://example.com/a/b.png"), cog.URLPath)


def test_input_default_is_none_whether_given_or_not():
    assert cog.Input(description="x").default is None
    assert cog.Input(default=None).default is None
    assert (cog.Input(description="x").default_given, cog.Input(None).default_given) == (False, True)
    assert cog.Input(3, ge=1) == cog.FieldInfo(3, ge=1)


def test_coder_registry_finds_the_first_coder_that_accepts_a_type():
    from cog.coder import Coder

    class Point:
        def __init__(self, x: int) -> None:
            self.x = x

    class PointCoder(Coder):
        @staticmethod
        def factory(tpe):
            return PointCoder() if tpe is Point else None

        def encode(self, x):
            return {"x": x.x}

        def decode(self, x):
            return Point(x["x"])

    assert Coder.lookup(Point) is None
    Coder.register(PointCoder)
    try:
        coder = Coder.lookup(Point)
        assert isinstance(coder, PointCoder)
        assert coder.encode(coder.decode({"x": 3})) == {"x": 3}
        assert Coder.lookup(int) is None
    finally:
        Coder._coders.discard(PointCoder)


def test_mode_enum():
    from cog.mode import Mode

    assert [str(mode) for mode in Mode] == ["predict", "train"]
    assert Mode("train") is Mode.TRAIN


def test_suppress_output_silences_python_fd_and_child_output(start_server, tmp_path):
    (tmp_path / "predict.py").write_text(
        "import os, subprocess, sys\n"
        "from cog import BasePredictor\n"
        "from cog.suppress_output import suppress_output\n\n"
        "def fds():\n"
        "    return [(os.fstat(fd).st_dev, os.fstat(fd).st_ino) for fd in (1, 2)]\n\n"
        "class Predictor(BasePredictor):\n"
        "    def predict(self, fail: bool = False) -> bool:\n"
        "        before = fds()\n"
        "        print('before')\n"
        "        try:\n"
        "            with suppress_output():\n"
        "                print('hidden print')\n"
        "                print('hidden stderr', file=sys.stderr)\n"
        "                os.write(1, b'hidden fd\\n')\n"
        "                subprocess.run(['echo', 'hidden child'], check=True)\n"
        "                if fail:\n"
        "                    raise ValueError('inside')\n"
        "        except ValueError:\n"
        "            print('caught')\n"
        "        print('after')\n"
        "        return fds() == before\n"
    )
    server = start_server(str(tmp_path))
    for fail, logs in ((False, "before\nafter\n"), (True, "before\ncaught\nafter\n")):
        body = server.client.predict({"fail": fail}).json
        assert (body["status"], body["output"]) == ("succeeded", True), body
        assert "hidden" not in body["logs"]
        assert body["logs"] == logs


def test_runner_imports_only_the_standard_library():
    check = (
        "import sys;"
        "import cog, cog.server.http, cog.server.worker, cog.weights, cog.gpu;"
        "import cog.coder, cog.mode, cog.suppress_output, cog.server.introspect;"
        "bad = sorted({m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names) - {'cog', '__main__'});"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    env = {**os.environ, "PYTHONPATH": str(RUNNER_ROOT)}
    result = subprocess.run([sys.executable, "-S", "-c", check], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def _interpreters() -> list[str]:
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[0-9]*/bin/python3.1[0-9]")))
    return [path for path in found if not path.startswith(os.path.realpath(sys.executable))]


@pytest.mark.parametrize("python", _interpreters() or [pytest.param("", marks=pytest.mark.skip("no other Pythons"))])
def test_serves_under_other_python_versions(python):
    server = Server("echo", python=python)
    try:
        server.wait_until("READY")
        assert server.client.predict({"prompt": "hi", "image": "data:,x"}).json["output"].endswith("|x")
        stream = Server("stream", python=python)
        try:
            stream.wait_until("READY")
            assert stream.client.predict({"words": 2}).json["output"] == ["w0 ", "w1 "]
        finally:
            stream.stop()
    finally:
        server.stop()
