"""The HTTP routes of the runner, with Cog's status codes and bodies (see docs/runner.md)."""

from __future__ import annotations

import asyncio
import json
import platform
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from cog import RUNNER_VERSION, __version__, gpu
from cog.server.httpcore import Request, Response, StreamingResponse
from cog.server.predictions import EVENTS, Prediction
from cog.server.predictions import Request as PredictionRequest
from cog.server.supervisor import Supervisor
from cog.server.validation import InputSchema
from cog.server.webhooks import WebhookSender

SSE_KEEPALIVE_S = 15.0
SSE_LAG_LIMIT = 1024
"""Undelivered events a slow SSE client may have queued before its stream ends with a ``lagged`` error."""
TRACE_HEADERS = ("traceparent", "tracestate")
NOT_READY = {
    "error": "Setup has not finished yet. Wait until it has finished, or GET /health-check for status.",
    "status": "failed",
}
SETUP_FAILED = {
    "error": "Setup failed, so this runner cannot run predictions. GET /health-check for the setup logs.",
    "status": "failed",
}
DRAINING = {"error": "The runner is shutting down and accepts no new predictions.", "status": "failed"}
DEFUNCT = {"error": "The model worker has exited; the runner must be restarted.", "status": "failed"}
AT_CAPACITY = {"error": "At capacity - all prediction slots busy", "status": "failed"}
ID_MISMATCH = {
    "loc": ["body", "id"],
    "msg": "prediction ID must match the ID supplied in the URL",
    "type": "value_error",
}
NO_STREAMING = "This model does not support streaming responses. Add @cog.streaming to predict() to enable SSE."


def json_response(status: int, body: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, json.dumps(body, separators=(",", ":"), sort_keys=True).encode(), headers=headers or [])


def text_response(status: int, text: str) -> Response:
    return Response(status, text.encode(), "text/plain; charset=utf-8")


class EnvelopeError(Exception):
    """The request body is JSON but not a prediction request (Cog answers 422 in plain text)."""


@dataclass
class Schema:
    """The bundled OpenAPI document (``.cog/openapi_schema.json``), if any."""

    document: dict[str, Any] | None

    @property
    def streaming(self) -> bool:
        post = (self.document or {}).get("paths", {}).get("/predictions", {}).get("post", {})
        return bool(post.get("x-cog-streaming"))

    @property
    def has_training(self) -> bool:
        return "TrainingInput" in (self.document or {}).get("components", {}).get("schemas", {})

    def inputs(self, training: bool) -> InputSchema | None:
        if self.document is None:
            return None
        return InputSchema(self.document, "TrainingInput" if training else "Input")


class Application:
    """Routes requests to handlers; owns nothing but references to the supervisor and schema."""

    def __init__(self, supervisor: Supervisor, schema: Schema, on_shutdown: Callable[[], None]) -> None:
        self.supervisor = supervisor
        self.schema = schema
        self.on_shutdown = on_shutdown
        self.draining = False
        self._input_schemas = {training: schema.inputs(training) for training in (False, True)}

    async def handle(self, request: Request) -> Response | StreamingResponse:
        parts = request.path.strip("/").split("/")
        method = request.method
        if parts[0] in ("predictions", "trainings"):
            training = parts[0] == "trainings"
            if len(parts) == 1:
                return await self.create(request, training) if method == "POST" else Response(405)
            if len(parts) == 2:
                return await self.create(request, training, parts[1]) if method == "PUT" else Response(405)
            if len(parts) == 3 and parts[2] == "cancel":
                return self.cancel(parts[1]) if method == "POST" else Response(405)
            return Response(404)
        routes = {
            "": self.root,
            "health-check": self.health_check,
            "openapi.json": self.openapi,
            "shutdown": self.shutdown,
        }
        route = routes.get(request.path.strip("/")) if len(parts) == 1 else None
        if route is None:
            return Response(404)
        if method != ("POST" if route == self.shutdown else "GET"):
            return Response(405)
        return await route()

    # -- simple routes -----------------------------------------------------------------------------
    async def root(self) -> Response:
        body = {
            "cog_version": __version__,
            "docs_url": "/docs",
            "openapi_url": "/openapi.json",
            "shutdown_url": "/shutdown",
            "healthcheck_url": "/health-check",
            "predictions_url": "/predictions",
            "predictions_idempotent_url": "/predictions/{prediction_id}",
            "predictions_cancel_url": "/predictions/{prediction_id}/cancel",
        }
        if self.schema.has_training:
            body.update(
                trainings_url="/trainings",
                trainings_idempotent_url="/trainings/{training_id}",
                trainings_cancel_url="/trainings/{training_id}/cancel",
            )
        return json_response(200, body)

    async def health_check(self) -> Response:
        supervisor = self.supervisor
        status = supervisor.state
        body: dict[str, Any] = {"status": status, "setup": supervisor.setup.as_json(), "version": _version()}
        if status == "READY":
            error = await supervisor.user_healthcheck()
            if error is not None:
                status = "UNHEALTHY"
                body["user_healthcheck_error"] = error
            elif supervisor.busy:
                status = "BUSY"
        body["status"] = status
        gpus = gpu.describe()
        if gpus:
            body["gpus"] = gpus
        if supervisor.gpu_check is not None:
            body["gpu_check"] = supervisor.gpu_check
        return Response(200, json.dumps(body, separators=(",", ":")).encode())

    async def openapi(self) -> Response:
        if self.schema.document is None:
            return json_response(503, {"error": "OpenAPI schema not available"})
        return json_response(200, self.schema.document)

    async def shutdown(self) -> Response:
        asyncio.get_running_loop().call_soon(self.on_shutdown)
        return json_response(200, {})

    def cancel(self, prediction_id: str) -> Response:
        return json_response(200 if self.supervisor.cancel(prediction_id) else 404, {})

    # -- creating predictions ----------------------------------------------------------------------
    async def create(
        self, request: Request, training: bool, path_id: str | None = None
    ) -> Response | StreamingResponse:
        if request.header("content-type").split(";")[0].strip().lower() != "application/json":
            return text_response(415, "Expected request with `Content-Type: application/json`")
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            return text_response(400, f"Failed to parse the request body as JSON: {exc}")
        try:
            envelope = _parse_envelope(body)
        except EnvelopeError as exc:
            return text_response(422, f"Failed to deserialize the JSON body into the target type: {exc}")
        wants_stream = "text/event-stream" in request.header("accept")
        if wants_stream and training:
            return json_response(406, {"error": "Training endpoints do not support streaming responses."})
        if wants_stream and not self.schema.streaming:
            return json_response(406, {"error": NO_STREAMING})
        supervisor = self.supervisor
        unavailable = self._unavailable()
        if unavailable is not None:
            return json_response(503, unavailable)
        if path_id is not None:
            if envelope.get("id") not in (None, path_id):
                return json_response(422, {"detail": [ID_MISMATCH]})
            envelope["id"] = path_id
        prediction_id = envelope.get("id") or f"pred_{time.time_ns():x}"
        existing = supervisor.active.get(prediction_id)
        if existing is not None:
            return self._stream(existing, replay=True) if wants_stream else json_response(202, existing.snapshot(True))
        input_schema = self._input_schemas[training]
        inputs = envelope.get("input") or {}
        if input_schema is not None:
            inputs, errors = input_schema.prepare(envelope.get("input"))
            if errors:
                return json_response(422, {"detail": errors})
        elif not isinstance(inputs, dict):
            return json_response(422, {"detail": [_root_error(inputs)]})
        if supervisor.busy:
            return json_response(409, AT_CAPACITY)
        prediction = Prediction(
            PredictionRequest(
                id=prediction_id,
                input=inputs,
                context=envelope.get("context") or {},
                webhook=envelope.get("webhook"),
                webhook_events_filter=tuple(envelope.get("webhook_events_filter") or EVENTS),
                training=training,
            )
        )
        if prediction.request.webhook:
            WebhookSender(prediction, {name: request.header(name) for name in TRACE_HEADERS if request.header(name)})
        stream = self._stream(prediction, replay=False) if wants_stream else None
        supervisor.submit(prediction)
        if stream is not None:
            return stream
        if request.header("prefer") == "respond-async":
            return json_response(202, {"id": prediction.id, "status": "starting"})
        return await self._wait(prediction, request)

    def _unavailable(self) -> dict[str, str] | None:
        """Why predictions cannot be taken now (the 503 body), or None when they can."""
        if self.draining:
            return DRAINING
        state = self.supervisor.state
        if state == "READY":
            return None
        return {"DEFUNCT": DEFUNCT, "SETUP_FAILED": SETUP_FAILED}.get(state, NOT_READY)

    async def _wait(self, prediction: Prediction, request: Request) -> Response:
        """Sync mode: answer when the prediction ends; cancel it if the client goes away first."""
        request.on_disconnect.append(lambda: self.supervisor.cancel(prediction.id))
        await prediction.completed
        if prediction.detail:
            return json_response(422, {"detail": prediction.detail})
        return json_response(200, prediction.snapshot())

    def _stream(self, prediction: Prediction, replay: bool) -> StreamingResponse:
        """Server-Sent Events for one prediction; the listener is attached before the prediction starts.

        A re-attached client first gets the prediction's event history; if that history has dropped events
        (``COG_STREAM_HISTORY_CAPACITY``), or the client falls ``SSE_LAG_LIMIT`` events behind, the stream
        ends with coglet's ``error`` event instead.
        """
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        lag = {"skipped": 0}

        def listen(event: str, data: dict[str, Any]) -> None:
            if lag["skipped"] or queue.qsize() >= SSE_LAG_LIMIT:
                lag["skipped"] += 1
            else:
                queue.put_nowait((event, data))

        if replay and prediction.history_skipped:
            error = {"error": "SSE stream replay truncated; events were dropped", "skipped": prediction.history_skipped}
            queue.put_nowait(("error", error))
        else:
            for event in prediction.history if replay else ():
                queue.put_nowait(event)
            prediction.listeners.append(listen)

        async def events() -> AsyncIterator[bytes]:
            try:
                while True:
                    if lag["skipped"] and queue.empty():
                        event, data = "error", {"error": "SSE stream lagged; events were dropped", **lag}
                    else:
                        try:
                            event, data = await asyncio.wait_for(queue.get(), SSE_KEEPALIVE_S)
                        except asyncio.TimeoutError:
                            yield b": keep-alive\n\n"
                            continue
                    payload = json.dumps(data, separators=(",", ":"), sort_keys=True)
                    yield f"event: {event}\ndata: {payload}\n\n".encode()
                    if event in ("completed", "error"):
                        return
            finally:
                prediction.listeners[:] = [item for item in prediction.listeners if item is not listen]

        return StreamingResponse(200, events(), "text/event-stream", [("cache-control", "no-cache")])


def _parse_envelope(body: Any) -> dict[str, Any]:
    """Check the request envelope the way Cog's typed deserialiser does; unknown keys are ignored."""
    if not isinstance(body, dict):
        raise EnvelopeError(f"invalid type: {type(body).__name__}, expected a prediction request object")
    for key in ("id", "webhook"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise EnvelopeError(f"{key}: invalid type: {_json_type(body[key])}, expected a string")
    events = body.get("webhook_events_filter")
    if events is not None:
        if not isinstance(events, list):
            raise EnvelopeError("webhook_events_filter: invalid type, expected a sequence")
        for index, event in enumerate(events):
            if event not in EVENTS:
                raise EnvelopeError(
                    f"webhook_events_filter[{index}]: unknown variant {event!r}, expected one of {EVENTS}"
                )
    context = body.get("context")
    if context is not None:
        if not isinstance(context, dict):
            raise EnvelopeError("context: invalid type, expected a map")
        for key, value in context.items():
            if not isinstance(value, str):
                raise EnvelopeError(f"context.{key}: invalid type: {_json_type(value)}, expected a string")
    return body


def _json_type(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "floating point", list: "sequence", dict: "map"}.get(
        type(value), type(value).__name__
    )


def _root_error(value: Any) -> dict[str, Any]:
    shown = json.dumps(value, separators=(",", ":"))
    return {"loc": ["body", "input", "__root__"], "msg": f'{shown} is not of type "object"', "type": "value_error"}


def _version() -> dict[str, str]:
    return {
        "runner": f"ocibuild-runner {RUNNER_VERSION}",
        "python_sdk": __version__,
        "python": platform.python_version(),
    }
