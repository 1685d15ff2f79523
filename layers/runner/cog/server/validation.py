"""Validate prediction inputs against the bundled OpenAPI ``Input`` schema, with Cog's 422 messages.

Covers the JSON-schema subset Cog's generator emits: ``type``, ``enum`` (through ``allOf``/``$ref``),
``minimum``/``maximum``, ``minLength``/``maxLength``, ``pattern``, ``items``, ``anyOf``, ``nullable``,
``required`` and ``default``.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

Detail = dict[str, Any]


def _show(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _error(location: str, message: str, kind: str = "value_error") -> Detail:
    return {"loc": ["body", "input", location], "msg": message, "type": kind}


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


_TYPE_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


class InputSchema:
    """The ``Input`` (or ``TrainingInput``) component of an OpenAPI document."""

    def __init__(self, document: dict[str, Any], component: str) -> None:
        self._components = document.get("components", {}).get("schemas", {})
        schema = self._components.get(component) or self._components.get("Input") or {}
        self.properties: dict[str, Any] = schema.get("properties", {})
        self.required: list[str] = schema.get("required", [])

    def prepare(self, raw: Any) -> tuple[dict[str, Any], list[Detail]]:
        """Strip unknown keys, inject ``null`` for omitted nullable inputs, and validate.

        Returns the inputs to pass on and the 422 details (empty when valid).
        """
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            return {}, [_error("__root__", f'{_show(raw)} is not of type "object"')]
        inputs = {key: value for key, value in raw.items() if key in self.properties}
        errors: list[Detail] = []
        for name in sorted(inputs):
            if inputs[name] is None and self._nullable(self.properties[name]):
                continue
            errors.extend(self._check(self.properties[name], inputs[name], name))
        for name in self.required:
            if name not in inputs:
                errors.append(_error(name, "Field required", "value_error.missing"))
        for name, spec in self.properties.items():
            if name not in inputs and name not in self.required and "default" not in spec and self._nullable(spec):
                inputs[name] = None
        return inputs, errors

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        """Merge ``$ref``/``allOf`` members into one schema (Cog uses them only for enums)."""
        if "$ref" in schema:
            schema = {**self._components.get(schema["$ref"].rsplit("/", 1)[-1], {}), **schema}
            del schema["$ref"]
        if "allOf" in schema:
            merged = {key: value for key, value in schema.items() if key != "allOf"}
            for member in schema["allOf"]:
                merged = {**self._resolve(member), **merged}
            schema = merged
        return schema

    def _nullable(self, schema: dict[str, Any]) -> bool:
        return bool(self._resolve(schema).get("nullable"))

    def _check(self, schema: dict[str, Any], value: Any, location: str) -> list[Detail]:
        schema = self._resolve(schema)
        if value is None and schema.get("nullable"):
            return []
        if "anyOf" in schema:
            if any(not self._check(member, value, location) for member in schema["anyOf"]):
                return []
            return [
                _error(location, f"{_show(value)} is not valid under any of the schemas listed in the 'anyOf' keyword")
            ]
        expected = schema.get("type")
        if expected in _TYPE_CHECKS and not _TYPE_CHECKS[expected](value):
            return [_error(location, f"{_show(value)} is not of type {_show(expected)}")]
        errors = []
        if "enum" in schema and value not in schema["enum"]:
            errors.append(_error(location, f"{_show(value)} is not one of {_show(schema['enum'])}"))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if "maximum" in schema and value > schema["maximum"]:
                errors.append(
                    _error(location, f"{_show(value)} is greater than the maximum of {_show(schema['maximum'])}")
                )
            if "minimum" in schema and value < schema["minimum"]:
                errors.append(
                    _error(location, f"{_show(value)} is less than the minimum of {_show(schema['minimum'])}")
                )
        if isinstance(value, str):
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                errors.append(_error(location, f"{_show(value)} is longer than {schema['maxLength']} characters"))
            if "minLength" in schema and len(value) < schema["minLength"]:
                errors.append(_error(location, f"{_show(value)} is shorter than {schema['minLength']} characters"))
            if "pattern" in schema and not _compiled(schema["pattern"]).search(value):
                errors.append(_error(location, f"{_show(value)} does not match {_show(schema['pattern'])}"))
        if isinstance(value, list) and "items" in schema:
            for index, item in enumerate(value):
                errors.extend(self._check(schema["items"], item, f"{location}/{index}"))
        return errors
