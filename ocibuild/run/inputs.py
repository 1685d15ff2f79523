"""``ocibuild predict`` inputs: ``-i name=value`` / ``-i name=@file`` / ``--json`` checked against the image's
OpenAPI schema (``components.schemas.Input``) and coerced to its types, like ``cog predict``.

Errors are one-line ``UserInputError``s naming the input and quoting the schema (types, choices, bounds), so
they are reported before any container starts.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ocibuild.errors import UserInputError

_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


def data_url(path: Path) -> str:
    """A ``data:`` URL of a file, its mime type guessed from the extension (as cog does)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserInputError(f"{path}: cannot read input file: {exc.strerror}") from None
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def read_json_arg(text: str | None) -> str | None:
    """``--json``: the JSON itself, ``@FILE`` (its contents) or ``@-`` (standard input), as ``cog predict``."""
    if text is None or not text.startswith("@"):
        return text
    if text == "@-":
        return sys.stdin.read()
    path = Path(text[1:]).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserInputError(f"--json {text}: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UserInputError(f"--json {text}: {path} is not UTF-8 text") from None


def input_properties(schema: dict[str, Any] | None) -> tuple[dict[str, dict[str, Any]], list[str]] | None:
    """The Input properties (``$ref``/``allOf`` enums resolved) and the required names; None without a schema."""
    if not schema:
        return None
    components = schema.get("components", {}).get("schemas", {})
    model = components.get("Input")
    if not isinstance(model, dict):
        return None
    props = {name: _resolve(prop, components) for name, prop in (model.get("properties") or {}).items()}
    return props, list(model.get("required") or [])


def _resolve(prop: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in prop.items() if k not in ("allOf", "$ref")}
    refs = [prop] if "$ref" in prop else []
    refs += [part for part in prop.get("allOf", []) if isinstance(part, dict)]
    for ref in refs:
        target = ref.get("$ref", "")
        resolved = components.get(target.rsplit("/", 1)[-1], {}) if target else ref
        for key in ("type", "enum", "format", "items"):
            if key in resolved:
                out.setdefault(key, resolved[key])
    return out


def _type_error(name: str, value: Any, kind: str) -> UserInputError:
    shown = json.dumps(value) if not isinstance(value, str) else f'"{value}"'
    return UserInputError(f'input "{name}": {shown} is not of type "{kind}"')


def _is_uri(prop: dict[str, Any]) -> bool:
    return prop.get("format") == "uri" or (prop.get("items") or {}).get("format") == "uri"


def coerce_text(name: str, text: str, prop: dict[str, Any]) -> Any:
    """A ``-i`` value (a string) as the JSON value the schema asks for."""
    if text.startswith("@") and (_is_uri(prop) or not prop):
        return data_url(Path(text[1:]).expanduser())
    kind = prop.get("type")
    if "anyOf" in prop and not kind:
        for option in prop["anyOf"]:
            try:
                return coerce_text(name, text, option)
            except UserInputError:
                continue
        raise UserInputError(f'input "{name}": "{text}" matches none of its types')
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            number = float(text)
            return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
        if kind == "boolean":
            if text.lower() in _TRUE | _FALSE:
                return text.lower() in _TRUE
            raise ValueError(text)
        if kind == "object":
            value = json.loads(text)
            if not isinstance(value, dict):
                raise ValueError(text)
            return value
    except ValueError:
        raise _type_error(name, text, kind or "string") from None
    return text


def check_value(name: str, value: Any, prop: dict[str, Any]) -> None:
    """The schema's type, choices and bounds, checked for one (JSON) value."""
    kind = prop.get("type")
    checks = {
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "string": lambda v: isinstance(v, str),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }
    if value is None and prop.get("nullable"):
        return
    if kind in checks and not checks[kind](value):
        raise _type_error(name, value, kind)
    if kind == "array":
        for item in value:
            check_value(name, item, prop.get("items") or {})
    if "enum" in prop and value not in prop["enum"]:
        raise UserInputError(f'input "{name}": {json.dumps(value)} is not one of {json.dumps(prop["enum"])}')
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in prop and value < prop["minimum"]:
            raise UserInputError(f'input "{name}": {value} is less than the minimum of {prop["minimum"]}')
        if "maximum" in prop and value > prop["maximum"]:
            raise UserInputError(f'input "{name}": {value} is greater than the maximum of {prop["maximum"]}')


def _files_in_json(value: Any, prop: dict[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("@") and _is_uri(prop):
        return data_url(Path(value[1:]).expanduser())
    if isinstance(value, list):
        return [_files_in_json(item, prop.get("items") or prop) for item in value]
    return value


def parse_input_args(inputs: Sequence[str], json_input: str | None, schema: dict[str, Any] | None) -> dict[str, Any]:
    """The prediction ``input`` object from ``-i`` flags and ``--json``, validated against ``schema``."""
    found = input_properties(schema)
    props, required = found if found is not None else ({}, [])
    result: dict[str, Any] = {}
    if json_input is not None:
        try:
            loaded = json.loads(json_input)
        except ValueError as exc:
            raise UserInputError(f"--json: not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise UserInputError("--json: expected a JSON object of inputs")
        result.update({name: _files_in_json(v, props.get(name, {})) for name, v in loaded.items()})
    repeated: set[str] = set()
    for item in inputs:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise UserInputError(f"-i {item}: expected name=value (or name=@file)")
        _known(name, props, found is not None)
        prop = props.get(name, {})
        if prop.get("type") == "array":
            if text.startswith("[") and name not in repeated:
                result[name] = _json_list(name, text, prop)
            else:
                items = result.get(name, []) if name in repeated else []
                result[name] = [*items, coerce_text(name, text, prop.get("items") or {})]
            repeated.add(name)
        else:
            result[name] = coerce_text(name, text, prop)
    if found is None:
        return result
    for name, value in result.items():
        _known(name, props, True)
        check_value(name, value, props[name])
    missing = [name for name in required if name not in result]
    if missing:
        name = missing[0]
        about = props.get(name, {}).get("description") or props.get(name, {}).get("title")
        raise UserInputError(f'missing required input "{name}"' + (f" ({about})" if about else ""))
    return result


def _json_list(name: str, text: str, prop: dict[str, Any]) -> list[Any]:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, list):
        raise _type_error(name, text, "array")
    return [coerce_text(name, v, prop.get("items") or {}) if isinstance(v, str) else v for v in value]


def _known(name: str, props: dict[str, Any], have_schema: bool) -> None:
    if have_schema and name not in props:
        known = ", ".join(sorted(props, key=lambda n: (props[n].get("x-order", 1 << 30), n))) or "none"
        raise UserInputError(f'unknown input "{name}"; the model\'s inputs are: {known}')
