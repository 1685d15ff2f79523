"""Assemble Cog's OpenAPI 3.0.2 document around the Input/Output schemas (pkg/schema/openapi_spec.go shape).

Beyond Cog's static generator we also describe PUT /predictions/{id} and POST /shutdown, which the runtime
serves (as the 0.16 generator did). Key order mimics Go: ordered maps (paths, components, properties) keep
insertion order, every other object has sorted keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ocibuild.cog.compat import COG_VERSION
from ocibuild.cog.schema_types import title_case

_ORDERED = frozenset({"paths", "schemas", "properties"})
_JSON = "application/json"


@dataclass(frozen=True)
class Side:
    """One endpoint family: its Input and Output schemas and the enum components its inputs reference."""

    input: dict[str, Any]
    output: dict[str, Any]
    enums: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class _Names:
    endpoint: str
    id_param: str
    input: str
    output: str
    request: str
    response: str
    summary: str
    noun: str


_PREDICT = _Names(
    "predictions",
    "prediction_id",
    "Input",
    "Output",
    "PredictionRequest",
    "PredictionResponse",
    "Predict",
    "prediction",
)
_TRAIN = _Names(
    "trainings",
    "training_id",
    "TrainingInput",
    "TrainingOutput",
    "TrainingRequest",
    "TrainingResponse",
    "Train",
    "training",
)


def build_document(predict: Side | None, train: Side | None, streaming: bool) -> dict[str, Any]:
    """The whole document for a predictor and/or a trainer."""
    components: dict[str, Any] = {}
    paths: dict[str, Any] = {
        "/": _simple_get("Root", "root__get"),
        "/health-check": _simple_get("Healthcheck", "healthcheck_health_check_get"),
    }
    for side, names in ((predict, _PREDICT), (train, _TRAIN)):
        if side is None:
            continue
        _add_components(components, side, names)
        paths.update(_paths(names, streaming and names is _PREDICT))
    components.update(_shared_components())
    paths["/shutdown"] = {
        "post": {
            "summary": "Start Shutdown",
            "operationId": "start_shutdown_shutdown_post",
            "responses": {"200": _ok({})},
        }
    }
    document = {
        "openapi": "3.0.2",
        "info": {"title": "Cog", "version": COG_VERSION},
        "paths": paths,
        "components": {"schemas": components},
    }
    return _go_order(document)


def _add_components(components: dict[str, Any], side: Side, names: _Names) -> None:
    components[names.input] = {**side.input, "title": names.input}
    components[names.output] = {**side.output, "title": "Output"}
    for name, schema in side.enums.items():
        if name in components and components[name] != schema:
            raise ValueError(f"two inputs named {name!r} have different choices")
        components[name] = schema
    input_ref, output_ref = _ref(names.input), _ref(names.output)
    components[names.request] = {
        "title": names.request,
        "type": "object",
        "properties": {"id": {"title": "Id", "type": "string"}, "input": {"$ref": input_ref}},
    }
    timestamp = {"type": "string", "format": "date-time"}
    components[names.response] = {
        "title": names.response,
        "type": "object",
        "properties": {
            "input": {"$ref": input_ref},
            "output": {"$ref": output_ref},
            "id": {"title": "Id", "type": "string"},
            "version": {"title": "Version", "type": "string"},
            "created_at": {"title": "Created At", **timestamp},
            "started_at": {"title": "Started At", **timestamp},
            "completed_at": {"title": "Completed At", **timestamp},
            "status": {"title": "Status", "type": "string"},
            "error": {"title": "Error", "type": "string"},
            "logs": {"title": "Logs", "type": "string"},
            "metrics": {"title": "Metrics", "type": "object"},
        },
    }


def _shared_components() -> dict[str, Any]:
    return {
        "Status": {
            "title": "Status",
            "description": "An enumeration.",
            "enum": ["starting", "processing", "succeeded", "canceled", "failed"],
            "type": "string",
        },
        "HTTPValidationError": {
            "title": "HTTPValidationError",
            "type": "object",
            "properties": {"detail": {"title": "Detail", "type": "array", "items": {"$ref": _ref("ValidationError")}}},
        },
        "ValidationError": {
            "title": "ValidationError",
            "required": ["loc", "msg", "type"],
            "type": "object",
            "properties": {
                "loc": {
                    "title": "Location",
                    "type": "array",
                    "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                },
                "msg": {"title": "Message", "type": "string"},
                "type": {"title": "Error Type", "type": "string"},
            },
        },
    }


def _paths(names: _Names, streaming: bool) -> dict[str, Any]:
    base = f"/{names.endpoint}"
    request = {"content": {_JSON: {"schema": {"$ref": _ref(names.request)}}}}
    responses = {"200": _ok({"$ref": _ref(names.response)}), "422": _invalid()}
    create = {
        "summary": names.summary,
        "description": f"Run a single {names.noun} on the model",
        "operationId": f"{names.summary.lower()}_{names.endpoint}_post",
        "requestBody": request,
        "responses": responses,
    }
    if streaming:
        create["x-cog-streaming"] = True
    id_param = {
        "required": True,
        "schema": {"title": title_case(names.id_param), "type": "string"},
        "name": names.id_param,
        "in": "path",
    }
    idempotent = {
        "summary": f"{names.summary} Idempotent",
        "description": f"Run a single {names.noun} on the model (idempotent creation).",
        "operationId": f"{names.summary.lower()}_idempotent_{names.endpoint}__{names.id_param}__put",
        "parameters": [id_param],
        "requestBody": {"required": True, **request},
        "responses": responses,
    }
    cancel = {
        "summary": "Cancel",
        "operationId": f"cancel_{names.endpoint}__{names.id_param}__cancel_post",
        "parameters": [id_param],
        "responses": {"200": _ok({}), "422": _invalid()},
    }
    return {
        base: {"post": create},
        f"{base}/{{{names.id_param}}}": {"put": idempotent},
        f"{base}/{{{names.id_param}}}/cancel": {"post": cancel},
    }


def _simple_get(summary: str, operation: str) -> dict[str, Any]:
    return {"get": {"summary": summary, "operationId": operation, "responses": {"200": _ok({})}}}


def _ok(schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": "Successful Response", "content": {_JSON: {"schema": schema}}}


def _invalid() -> dict[str, Any]:
    return {"description": "Validation Error", "content": {_JSON: {"schema": {"$ref": _ref("HTTPValidationError")}}}}


def _ref(name: str) -> str:
    return f"#/components/schemas/{name}"


def _go_order(value: Any, ordered: bool = False) -> Any:
    """Sort object keys the way Go's encoding/json does for plain maps; keep ordered maps as built."""
    if isinstance(value, dict):
        items = value.items() if ordered else sorted(value.items())
        return {k: _go_order(v, not ordered and k in _ORDERED) for k, v in items}
    if isinstance(value, list):
        return [_go_order(v) for v in value]
    return value
