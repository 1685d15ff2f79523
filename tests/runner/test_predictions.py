"""Sync predictions: request envelope, input validation (422 bodies), outputs, files, logs and metrics."""

from __future__ import annotations

import base64

import pytest

from tests.runner.harness import Server

ECHO_MODES = '["plain","file","slow","fail","logs"]'


@pytest.fixture(scope="module")
def outputs_server():
    server = Server("outputs")
    server.wait_until("READY")
    yield server
    server.stop()


def _detail(field: str, msg: str, kind: str = "value_error") -> dict:
    return {"loc": ["body", "input", field], "msg": msg, "type": kind}


def test_sync_prediction_succeeds_with_logs_and_metrics(echo):
    reply = echo.client.predict({"prompt": "hi", "n": 2, "flag": True}, id="p-1")
    assert reply.status == 200
    body = reply.json
    assert set(body) == {"id", "status", "output", "logs", "metrics"}
    assert body["id"] == "p-1"
    assert body["status"] == "succeeded"
    assert body["output"] == "hihi|1.0|True|ab|None|None"
    assert body["logs"] == "running plain\nto stderr\n"
    assert body["metrics"]["token_count"] == 2
    assert body["metrics"]["predict_time"] > 0


def test_generated_ids_look_like_cogs(echo):
    assert echo.client.predict({"prompt": "x"}).json["id"].startswith("pred_")


@pytest.mark.parametrize(
    ("inputs", "detail"),
    [
        ({}, [_detail("prompt", "Field required", "value_error.missing")]),
        ({"prompt": "hi", "n": 20}, [_detail("n", "20 is greater than the maximum of 10")]),
        ({"prompt": "hi", "n": 0}, [_detail("n", "0 is less than the minimum of 1")]),
        ({"prompt": "hi", "n": "2"}, [_detail("n", '"2" is not of type "integer"')]),
        ({"prompt": "hi", "n": 2.5}, [_detail("n", '2.5 is not of type "integer"')]),
        ({"prompt": "hi", "n": True}, [_detail("n", 'true is not of type "integer"')]),
        ({"prompt": "hi", "mode": "x"}, [_detail("mode", f'"x" is not one of {ECHO_MODES}')]),
        ({"prompt": "hi", "scale": -1}, [_detail("scale", "-1 is less than the minimum of 0.0")]),
        ({"prompt": "hi", "flag": "yes"}, [_detail("flag", '"yes" is not of type "boolean"')]),
        (
            {"prompt": "hi", "code": "A"},
            [_detail("code", '"A" is shorter than 2 characters'), _detail("code", '"A" does not match "^[a-z]+$"')],
        ),
        ({"prompt": "x" * 21}, [_detail("prompt", f'"{"x" * 21}" is longer than 20 characters')]),
        ({"prompt": None}, [_detail("prompt", 'null is not of type "string"')]),
        ({"prompt": "hi", "items": [1, "a"]}, [_detail("items/1", '"a" is not of type "integer"')]),
        ({"prompt": "hi", "items": 3}, [_detail("items", '3 is not of type "array"')]),
        (
            {"n": 20, "mode": "x"},
            [
                _detail("mode", f'"x" is not one of {ECHO_MODES}'),
                _detail("n", "20 is greater than the maximum of 10"),
                _detail("prompt", "Field required", "value_error.missing"),
            ],
        ),
    ],
)
def test_invalid_inputs_get_cogs_422_detail(echo, inputs, detail):
    reply = echo.client.predict(inputs)
    assert reply.status == 422
    assert reply.json == {"detail": detail}


def test_input_that_is_not_an_object(echo):
    reply = echo.client.post("/predictions", {"input": "text"})
    assert reply.status == 422
    assert reply.json == {"detail": [_detail("__root__", '"text" is not of type "object"')]}


def test_missing_or_null_input_counts_as_empty(echo):
    for body in ({}, {"input": None}):
        reply = echo.client.post("/predictions", body)
        assert reply.json == {"detail": [_detail("prompt", "Field required", "value_error.missing")]}


def test_unknown_inputs_are_ignored_and_null_is_accepted_for_nullable(echo):
    reply = echo.client.predict({"prompt": "hi", "bogus": 1, "note": None})
    assert reply.json["output"] == "hi|1.0|False|ab|None|None"


def test_integral_float_for_integer_input_is_passed_as_int(echo):
    assert echo.client.predict({"prompt": "a", "n": 2.0}).json["output"].startswith("aa|")


def test_secret_input(echo):
    assert echo.client.predict({"prompt": "a", "token": "s3cret"}).json["output"].endswith("|s3cret")


@pytest.mark.parametrize(
    ("raw", "headers", "status"),
    [
        (b"", {}, 400),
        (b"{bad", {}, 400),
        (b"[1]", {}, 422),
        (b'{"id": 5}', {}, 422),
        (b'{"webhook": 5}', {}, 422),
        (b'{"webhook_events_filter": ["bogus"]}', {}, 422),
        (b'{"context": {"a": 1}}', {}, 422),
        (b'{"input": {"prompt": "a"}}', {"Content-Type": "text/plain"}, 415),
        (b'{"input": {"prompt": "a"}}', {"Content-Type": ""}, 415),
        (b'{"input": {"prompt": "a"}}', {"Content-Type": "application/json; charset=utf-8"}, 200),
    ],
)
def test_envelope_errors(echo, raw, headers, status):
    reply = echo.client.post("/predictions", raw=raw, headers=headers)
    assert reply.status == status, reply.body
    if status in (400, 415) or (status == 422 and b"input" not in raw):
        assert reply.headers["content-type"].startswith("text/plain")


def test_unknown_envelope_keys_are_ignored(echo):
    reply = echo.client.post("/predictions", {"input": {"prompt": "a"}, "created_at": "x", "output_file_prefix": "y"})
    assert reply.status == 200


def test_context_is_visible_to_the_model(start_server, tmp_path):
    (tmp_path / "predict.py").write_text(
        "from cog import BasePredictor, current_scope\n\n"
        "class Predictor(BasePredictor):\n"
        "    def predict(self) -> dict:\n"
        "        current_scope().record_metric('calls', 1, mode='incr')\n"
        "        current_scope().record_metric('calls', 2, mode='incr')\n"
        "        self.scope.metrics.record('seen', 'a', mode='append')\n"
        "        return current_scope().context\n"
    )
    server = start_server(str(tmp_path))
    body = server.client.predict({}, context={"user": "u1"}).json
    assert body["output"] == {"user": "u1"}
    assert body["metrics"]["calls"] == 3
    assert body["metrics"]["seen"] == ["a"]


def test_model_exception_fails_the_prediction_and_server_stays_ready(echo):
    reply = echo.client.predict({"prompt": "a", "mode": "fail"})
    assert reply.status == 200
    body = reply.json
    assert body["status"] == "failed"
    assert body["error"] == "Prediction failed: ValueError: boom"
    assert "output" not in body
    assert "running fail\n" in body["logs"]
    assert 'raise ValueError("boom")' in body["logs"]
    assert "cog/server" not in body["logs"]
    assert echo.client.get("/health-check").json["status"] == "READY"
    assert echo.client.predict({"prompt": "a"}).json["status"] == "succeeded"


def test_data_uri_file_input(echo):
    image = "data:text/plain;base64," + base64.b64encode(b"hello").decode()
    assert echo.client.predict({"prompt": "a", "image": image}).json["output"].endswith("|hello")


def test_http_file_input(echo, receiver, tmp_path):
    import http.server
    import threading

    (tmp_path / "in.txt").write_text("from-url")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args):
            pass

    files = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=files.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{files.server_port}/in.txt"
        assert echo.client.predict({"prompt": "a", "image": url}).json["output"].endswith("|from-url")
        missing = echo.client.predict({"prompt": "a", "image": url + ".missing"}).json
        assert missing["status"] == "failed"
        assert "404" in missing["error"]
    finally:
        files.shutdown()
        files.server_close()


def test_file_output_is_a_data_uri(echo):
    body = echo.client.predict({"prompt": "up", "n": 2, "mode": "file"}).json
    assert body["output"] == "data:text/plain;base64," + base64.b64encode(b"upup").decode()


def test_file_output_is_uploaded_with_upload_url(start_server, receiver):
    server = start_server("echo", args=("--upload-url", receiver.url + "/upload/"))
    body = server.client.predict({"prompt": "up", "mode": "file"}).json
    assert body["output"] == f"{receiver.url}/stored/upload/echo-up.txt"
    (upload,) = [item for item in receiver.received if item.method == "PUT"]
    assert upload.path == "/upload/echo-up.txt"
    assert upload.body == b"up"
    assert upload.headers["content-type"] == "text/plain"


@pytest.mark.parametrize(
    ("kind", "output"),
    [
        ("model", {"color": "red", "name": "a", "score": 0.5, "when": "2024-01-02T03:04:05"}),
        ("dataclass", {"x": 1, "y": 2}),
        ("enum", "red"),
        ("datetime", "2024-01-02T03:04:05"),
        ("tuple", [1, "two", 3.0]),
        ("set", [7]),
        ("nested", {"colors": ["red"], "points": [{"x": 1, "y": 2}], "when": "2024-01-02T03:04:05"}),
    ],
)
def test_outputs_are_normalised(outputs_server, kind, output):
    assert outputs_server.client.predict({"kind": kind}).json["output"] == output


def test_function_predictor_and_trainer(start_server):
    server = start_server("function", stub="predict.py:run", env={"COG_TRAIN_TYPE_STUB": "train.py:train"})
    assert server.client.predict({"times": 3}).json["output"] == "hihihi"
    training = server.client.post("/trainings", {"input": {"epochs": 2}}).json
    assert training["output"] == {"weights": "m-weights", "epochs": 2}
    assert training["logs"] == "training m\n"
    invalid = server.client.post("/trainings", {"input": {"epochs": 9}})
    assert invalid.status == 422
    assert invalid.json == {"detail": [_detail("epochs", "9 is greater than the maximum of 5")]}
    put = server.client.put("/trainings/t1", {"input": {"epochs": 1}}).json
    assert (put["id"], put["status"]) == ("t1", "succeeded")
    assert server.client.post("/trainings/t1/cancel").status == 404
    sse = server.client.post("/trainings", {"input": {}}, headers={"Accept": "text/event-stream"})
    assert sse.status == 406
    assert sse.json == {"error": "Training endpoints do not support streaming responses."}


def test_train_mode_serves_the_trainer_on_every_route(start_server):
    server = start_server(
        "function", stub="predict.py:run", env={"COG_TRAIN_TYPE_STUB": "train.py:train"}, args=("--x-mode", "train")
    )
    assert server.client.post("/trainings", {"input": {"epochs": 3}}).json["output"]["epochs"] == 3
    assert server.client.predict({}).json["output"] == {"weights": "m-weights", "epochs": 1}
