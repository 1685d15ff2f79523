"""User code runs in a worker process: setup failures, crashes and timeouts leave the server answering."""

from __future__ import annotations

import pytest


def test_setup_failure(start_server):
    server = start_server("setupfail", wait=("SETUP_FAILED",))
    body = server.client.get("/health-check").json
    assert body["setup"]["status"] == "failed"
    assert "loading weights\n" in body["setup"]["logs"]
    assert "RuntimeError: weights missing" in body["setup"]["logs"]
    assert "completed_at" in body["setup"]
    reply = server.client.predict({})
    assert reply.status == 503
    assert reply.json["status"] == "failed"


def test_setup_failure_quotes_the_first_line_of_the_exception(start_server, tmp_path):
    (tmp_path / "predict.py").write_text(
        "from cog import BasePredictor\n\nclass Predictor(BasePredictor):\n"
        "    def setup(self):\n        raise RuntimeError('boom\\nmore')\n\n"
        "    def predict(self) -> int:\n        return 1\n"
    )
    server = start_server(str(tmp_path), wait=("SETUP_FAILED",))
    logs = server.client.get("/health-check").json["setup"]["logs"]
    assert logs.strip().splitlines()[-1] == "Setup failed: RuntimeError: boom"
    assert "more" in logs  # the whole traceback is still in the logs


def test_setup_import_error(start_server, tmp_path):
    (tmp_path / "predict.py").write_text("import not_a_module_anywhere\n")
    server = start_server(str(tmp_path), wait=("SETUP_FAILED",))
    assert "ModuleNotFoundError" in server.client.get("/health-check").json["setup"]["logs"]


def test_setup_timeout(start_server, tmp_path):
    (tmp_path / "predict.py").write_text(
        "import time\nfrom cog import BasePredictor\n\nclass Predictor(BasePredictor):\n"
        "    def setup(self):\n        time.sleep(30)\n\n    def predict(self) -> int:\n        return 1\n"
    )
    server = start_server(str(tmp_path), env={"COG_SETUP_TIMEOUT": "0.5"}, wait=("SETUP_FAILED",))
    assert "COG_SETUP_TIMEOUT" in server.client.get("/health-check").json["setup"]["logs"]


def test_setup_receives_weights(start_server, tmp_path):
    (tmp_path / "predict.py").write_text(
        "from cog import BasePredictor\n\nclass Predictor(BasePredictor):\n"
        "    def setup(self, weights=None):\n        self.weights = weights\n\n"
        "    def predict(self) -> str:\n        return str(self.weights)\n"
    )
    server = start_server(str(tmp_path), env={"COG_WEIGHTS": "https://example.com/w.tar"})
    assert server.client.predict({}).json["output"] == "https://example.com/w.tar"


@pytest.mark.parametrize("how", ["exit", "segfault"])
def test_worker_crash_is_reported_as_defunct(start_server, how):
    server = start_server("crash")
    reply = server.client.predict({"how": how})
    assert reply.status == 200
    assert reply.json["status"] == "failed"
    assert reply.json["error"] == "Worker crashed"
    assert server.client.get("/health-check").json["status"] == "DEFUNCT"
    again = server.client.predict({"how": "none"})
    assert again.status == 503
    assert server.client.get("/").status == 200
