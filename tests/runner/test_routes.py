"""Discovery, OpenAPI, health-check states and routing errors."""

from __future__ import annotations

import json
import shutil

from tests.runner.harness import PREDICTORS


def test_root_lists_cog_urls(echo):
    reply = echo.client.get("/")
    assert reply.status == 200
    assert reply.json == {
        "cog_version": "0.23.1",
        "docs_url": "/docs",
        "openapi_url": "/openapi.json",
        "shutdown_url": "/shutdown",
        "healthcheck_url": "/health-check",
        "predictions_url": "/predictions",
        "predictions_idempotent_url": "/predictions/{prediction_id}",
        "predictions_cancel_url": "/predictions/{prediction_id}/cancel",
    }


def test_root_lists_training_urls_when_the_schema_has_training_input(start_server):
    server = start_server("function", stub="predict.py:run", env={"COG_TRAIN_TYPE_STUB": "train.py:train"})
    body = server.client.get("/").json
    assert body["trainings_url"] == "/trainings"
    assert body["trainings_cancel_url"] == "/trainings/{training_id}/cancel"


def test_openapi_serves_the_bundled_schema(echo):
    reply = echo.client.get("/openapi.json")
    assert reply.status == 200
    assert reply.json == json.loads((PREDICTORS / "echo" / ".cog" / "openapi_schema.json").read_text())


def test_without_a_schema_openapi_is_503_and_inputs_are_not_validated(start_server, tmp_path):
    shutil.copy(PREDICTORS / "echo" / "predict.py", tmp_path / "predict.py")
    server = start_server(str(tmp_path))
    assert server.client.get("/openapi.json").status == 503
    assert server.client.get("/openapi.json").json == {"error": "OpenAPI schema not available"}
    reply = server.client.predict({"prompt": "hi", "n": 2, "unknown": 1})
    assert reply.status == 200
    assert reply.json["output"].startswith("hihi|")
    missing = server.client.predict({})
    assert missing.status == 422
    assert missing.json["detail"][0]["loc"] == ["body", "input", "prompt"]


def test_unknown_routes_and_methods(echo):
    assert echo.client.get("/docs").status == 404
    assert echo.client.get("/nope").status == 404
    assert echo.client.get("/predictions/abc").status == 405
    assert echo.client.get("/predictions").status == 405
    assert echo.client.get("/predictions/abc/cancel").status == 405
    assert echo.client.get("/shutdown").status == 405


def test_health_check_ready_reports_setup_and_version(echo):
    body = echo.client.get("/health-check").json
    assert body["status"] == "READY"
    assert body["setup"]["status"] == "succeeded"
    assert body["setup"]["logs"] == "setup done\n"
    assert {"started_at", "completed_at"} <= set(body["setup"])
    assert body["version"]["python_sdk"] == "0.23.1"
    assert "gpus" not in body or isinstance(body["gpus"], list)


def test_health_check_starting_then_ready(start_server, tmp_path):
    (tmp_path / "predict.py").write_text(
        "import time\nfrom cog import BasePredictor\n\n"
        "class Predictor(BasePredictor):\n"
        "    def setup(self):\n        time.sleep(1.0)\n\n"
        "    def predict(self) -> str:\n        return 'ok'\n"
    )
    server = start_server(str(tmp_path), wait=("STARTING",))
    assert server.client.predict({}).json == {
        "error": "Setup has not finished yet. Wait until it has finished, or GET /health-check for status.",
        "status": "failed",
    }
    assert server.client.predict({}).status == 503
    server.wait_until("READY")
    assert server.client.predict({}).json["output"] == "ok"


def test_health_check_unhealthy_from_user_healthcheck(start_server, tmp_path):
    marker = tmp_path / "state"
    server = start_server("health", env={"HEALTH_FILE": str(marker)})
    assert server.client.get("/health-check").json["status"] == "READY"
    marker.write_text("false")
    body = server.client.get("/health-check").json
    assert body["status"] == "UNHEALTHY"
    assert body["user_healthcheck_error"] == "Healthcheck failed: user-defined healthcheck returned False"
    marker.write_text("raise")
    body = server.client.get("/health-check").json
    assert body["user_healthcheck_error"] == "Healthcheck failed: RuntimeError: gpu lost"
    assert server.client.predict({"x": 2}).json["output"] == 4
    marker.unlink()
    assert server.client.get("/health-check").json["status"] == "READY"
