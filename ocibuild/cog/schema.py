"""Static OpenAPI generation for a Cog predictor: read predict.py with `ast`, never import or run it.

Follows Cog's static generator (pkg/schema, Cog >= 0.19); docs/cog-schema.md lists where we differ on purpose.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocibuild.cog.openapi_doc import Side, build_document
from ocibuild.cog.pysource import Module, Project, SourceError, Symbol, snippet
from ocibuild.cog.schema_types import InputType, TypeReader, title_case
from ocibuild.errors import UserInputError

_INPUT_KEYWORDS = frozenset(
    {"default", "description", "ge", "le", "min_length", "max_length", "regex", "choices", "deprecated", "accept"}
)
_RESERVED_COMPONENTS = frozenset(
    {
        "Input",
        "Output",
        "Status",
        "HTTPValidationError",
        "ValidationError",
        "PredictionRequest",
        "PredictionResponse",
        "TrainingInput",
        "TrainingOutput",
        "TrainingRequest",
        "TrainingResponse",
    }
)
_MISSING = object()

RuntimeInputs = Mapping[str, Mapping[str, Mapping[str, Any]]]
"""``Input()`` options read by importing the predictor: ``{"predict"|"train": {input: {keyword: value}}}``."""


class UnresolvedValue(SourceError):
    """A value in ``Input()`` or a default is computed (a call, a class attribute): only importing the predictor
    can read it. The build then reads it inside the built image (``ocibuild.cog.runtime_schema``)."""


@dataclass(frozen=True)
class SchemaResult:
    """The OpenAPI document plus what the image contract needs from the predictor's source."""

    openapi: dict[str, Any]
    streaming: bool
    concurrency_max: int | None
    is_async: bool


@dataclass(frozen=True)
class _Target:
    """The function whose signature is the API, and the decorators read from it."""

    function: ast.FunctionDef | ast.AsyncFunctionDef
    module: Module
    is_method: bool


def split_ref(ref: str) -> tuple[str, str]:
    """`predict.py:Predictor` → ("predict.py", "Predictor"); Cog splits on `.py:`."""
    parts = ref.split(".py:")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise UserInputError(f"predictor reference {ref!r} must look like 'predict.py:Predictor'")
    return parts[0] + ".py", parts[1]


def generate_schema(
    project_dir: Path,
    predict_ref: str | None,
    train_ref: str | None,
    *,
    runtime: RuntimeInputs | None = None,
    lenient: bool = False,
) -> SchemaResult:
    """The OpenAPI document for the predictor and/or trainer; UserInputError (`file.py:LINE: ...`) if unsupported.

    A value that cannot be read statically raises ``UnresolvedValue``, unless ``runtime`` holds that input's
    options (read in the image), or ``lenient`` leaves that input's options out (a placeholder document)."""
    if predict_ref is None and train_ref is None:
        raise UserInputError("cog.yaml: neither run nor train is set, so there is no API to describe")
    project = Project(project_dir)
    reader = TypeReader(project)
    predict_side = train_side = None
    streaming, concurrency, is_async = False, None, False
    if predict_ref is not None:
        target = _find_target(project, predict_ref, ("run", "predict"))
        predict_side = _side(reader, target, (runtime or {}).get("predict"), lenient)
        streaming, concurrency = _decorators(project, target, predict_side.output)
        is_async = isinstance(target.function, ast.AsyncFunctionDef)
    if train_ref is not None:
        train_side = _side(reader, _find_target(project, train_ref, ("train",)), (runtime or {}).get("train"), lenient)
    try:
        document = build_document(predict_side, train_side, streaming)
    except ValueError as exc:
        raise UserInputError(f"{train_ref}: {exc}") from None
    return SchemaResult(document, streaming, concurrency, is_async)


def openapi_json(openapi: dict[str, Any]) -> str:
    """The compact JSON Cog writes to /src/.cog/openapi_schema.json and the `run.cog.openapi_schema` label."""
    return json.dumps(openapi, separators=(",", ":"), ensure_ascii=False)


def schema_command(path: Path) -> str:
    """What `ocibuild schema PATH` prints: the OpenAPI document of the project at PATH (dir or cog.yaml)."""
    from ocibuild.cog.config import load_config

    config_path = path / "cog.yaml" if path.is_dir() else path
    loaded = load_config(config_path)
    try:
        result = generate_schema(loaded.project_dir, loaded.predictor_ref, loaded.train_ref)
    except UnresolvedValue as exc:
        raise UserInputError(f"{exc}; `ocibuild build` reads it by importing the predictor in the image") from None
    return json.dumps(result.openapi, indent=2, ensure_ascii=False)


def _find_target(project: Project, ref: str, methods: tuple[str, ...]) -> _Target:
    filename, name = split_ref(ref)
    module = project.load(filename)
    symbol = project.lookup(name, module)
    if symbol is None or symbol.module is None or symbol.node is None:
        raise UserInputError(f"{filename}: no class or function named {name!r} is defined or imported here")
    node = symbol.node
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return _Target(node, symbol.module, is_method=False)
    if isinstance(node, ast.ClassDef):
        found = _find_method(project, symbol, methods)
        if found is None:
            wanted = " or ".join(f"{m}()" for m in methods)
            raise SourceError(symbol.module, node, f"class {name} has no {wanted} method")
        return found
    raise SourceError(symbol.module, node, f"{name} must be a class or a function")


def _find_method(project: Project, symbol: Symbol, methods: tuple[str, ...], depth: int = 0) -> _Target | None:
    """The first of `methods` defined on the class or (depth-first) on its local base classes."""
    node, module = symbol.node, symbol.module
    assert isinstance(node, ast.ClassDef) and module is not None
    for method in methods:
        for stmt in node.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) and stmt.name == method:
                return _Target(stmt, module, is_method=not _is_staticmethod(stmt))
    if depth > 16:
        return None
    for base in node.bases:
        base_symbol = project.resolve(base, module)
        if base_symbol is not None and isinstance(base_symbol.node, ast.ClassDef):
            found = _find_method(project, base_symbol, methods, depth + 1)
            if found is not None:
                return found
    return None


def _is_staticmethod(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in function.decorator_list)


def _side(reader: TypeReader, target: _Target, runtime: Mapping[str, Mapping[str, Any]] | None, lenient: bool) -> Side:
    function, module = target.function, target.module
    where = f"{function.name}()"
    if function.returns is None:
        raise SourceError(module, function, f"{where} has no return type annotation")
    output = reader.output_schema(function.returns, module)
    args = function.args
    if args.vararg or args.kwarg:
        raise SourceError(module, function, f"{where} must not take *args or **kwargs")
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    params = list(zip(positional, defaults, strict=True)) + list(zip(args.kwonlyargs, args.kw_defaults, strict=True))
    if target.is_method:
        params = params[1:]
    properties: dict[str, Any] = {}
    required: list[str] = []
    enums: dict[str, dict[str, Any]] = {}
    for order, (arg, default) in enumerate(params):
        fallback = _Fallback((runtime or {}).get(arg.arg), lenient)
        prop, is_required, enum = _input_property(reader, module, where, arg, default, order, fallback)
        properties[arg.arg] = prop
        if is_required:
            required.append(arg.arg)
        if enum is not None:
            enums[arg.arg] = enum
    input_schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        input_schema["required"] = required
    return Side(input_schema, output, enums)


@dataclass(frozen=True)
class _Fallback:
    """What an input's options are when its ``Input()`` cannot be read statically."""

    runtime: Mapping[str, Any] | None
    lenient: bool


def _input_property(
    reader: TypeReader,
    module: Module,
    where: str,
    arg: ast.arg,
    default: ast.expr | None,
    order: int,
    fallback: _Fallback = _Fallback(None, False),
) -> tuple[dict[str, Any], bool, dict[str, Any] | None]:
    """One input's property schema, whether it is required, and its enum component (choices/Literal)."""
    what = f"input {arg.arg!r} of {where}"
    if arg.annotation is None:
        raise SourceError(module, arg, f"{what} has no type annotation")
    kind = reader.input_type(arg.annotation, module, what)
    try:
        options = _input_options(reader.project, module, what, default)
    except UnresolvedValue:
        if fallback.runtime is not None:
            options = _schema_keywords(module, default or arg, what, dict(fallback.runtime))
        elif fallback.lenient:
            options = {}
        else:
            raise
    choices = options.pop("choices", None)
    if choices is not None and kind.literal is not None:
        raise SourceError(module, arg, f"{what}: use either choices= or Literal[...], not both")
    if kind.literal is not None:
        choices = list(kind.literal)
    prop: dict[str, Any] = {"x-order": order}
    enum = None
    if choices is not None:
        enum = _enum_component(module, arg, what, kind, choices)
        prop["allOf"] = [{"$ref": f"#/components/schemas/{arg.arg}"}]
    else:
        prop.update({"title": title_case(arg.arg), **kind.schema})
    nullable = kind.nullable or (kind.primitive == "Secret" and options.get("default", _MISSING) is None)
    default_value = options.pop("default", _MISSING)
    has_default = default_value is not _MISSING and (default_value is not None or nullable)
    if has_default:
        prop["default"] = default_value
    if nullable:
        prop["nullable"] = True
    prop.update(options)
    if "x-cog-accept" in prop and "uri" not in (kind.schema.get("format"), kind.schema.get("items", {}).get("format")):
        raise SourceError(module, arg, f"{what}: accept= is only valid on Path or File inputs")
    if has_default and default_value is not None:
        _check_default(module, arg, what, {**kind.schema, **prop, **(enum or {})}, default_value)
    # `x: int = Input(default=None)` is optional without a default (as in Cog 0.16); see docs/cog-schema.md.
    required = default_value is _MISSING and (kind.union or not nullable)
    return prop, required, enum


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def _check_default(module: Module, arg: ast.arg, what: str, schema: dict[str, Any], value: Any) -> None:
    """A default must satisfy its own input's schema (Cog's build validates the document and stops)."""
    expected = _JSON_TYPES.get(schema.get("type", ""))
    wrong_bool = isinstance(value, bool) and schema.get("type") != "boolean"
    problem = None
    if expected is not None and (wrong_bool or not isinstance(value, expected)):
        problem = f"is not of type {schema['type']}"
    elif "enum" in schema and value not in schema["enum"]:
        problem = f"is not one of the choices {schema['enum']}"
    elif isinstance(value, int | float) and "minimum" in schema and value < schema["minimum"]:
        problem = f"is less than the minimum {schema['minimum']} (ge=)"
    elif isinstance(value, int | float) and "maximum" in schema and value > schema["maximum"]:
        problem = f"is greater than the maximum {schema['maximum']} (le=)"
    elif isinstance(value, str) and len(value) < schema.get("minLength", 0):
        problem = f"is shorter than min_length={schema['minLength']}"
    elif isinstance(value, str) and "maxLength" in schema and len(value) > schema["maxLength"]:
        problem = f"is longer than max_length={schema['maxLength']}"
    elif isinstance(value, str) and "pattern" in schema and not _matches(schema["pattern"], value):
        problem = f"does not match regex={schema['pattern']!r}"
    if problem is not None:
        raise SourceError(module, arg, f"{what}: the default {value!r} {problem}")


def _matches(pattern: str, value: str) -> bool:
    """`re.search`, as JSON Schema's `pattern`; a pattern Python cannot compile is left to the runtime."""
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return True


def _input_options(project: Project, module: Module, what: str, default: ast.expr | None) -> dict[str, Any]:
    """The schema keywords from `Input(...)` (or a plain default); module-level constants are followed."""
    if default is None:
        return {}
    symbol = project.resolve(default.func, module) if isinstance(default, ast.Call) else None
    if symbol is None or symbol.qualified != "cog.Input":
        return {"default": _static(project, module, default, f"{what}: default")}
    values: dict[str, Any] = {}
    if len(default.args) > 1:
        raise SourceError(module, default, f"{what}: Input() takes only the default positionally")
    if default.args:
        values["default"] = _static(project, module, default.args[0], f"{what}: default")
    for keyword in default.keywords:
        name = keyword.arg
        if name is None:
            raise UnresolvedValue(
                module, keyword.value, f"{what}: `**{snippet(keyword.value)}` cannot be read statically"
            )
        if name == "default_factory":
            raise SourceError(module, keyword.value, f"{what}: default_factory is not supported; use default=")
        if name not in _INPUT_KEYWORDS:
            raise SourceError(module, keyword.value, f"{what}: Input() has no keyword {name!r}")
        values[name] = _static(project, module, keyword.value, f"{what}: {name}")
    return _schema_keywords(module, default, what, values)


def _schema_keywords(module: Module, node: ast.AST, what: str, values: dict[str, Any]) -> dict[str, Any]:
    checks = {
        "description": (str, "description"),
        "ge": ((int, float), "minimum"),
        "le": ((int, float), "maximum"),
        "min_length": (int, "minLength"),
        "max_length": (int, "maxLength"),
        "regex": (str, "pattern"),
        "accept": (str, "x-cog-accept"),
        "deprecated": (bool, "deprecated"),
    }
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name in ("default", "choices"):
            out[name] = value
            continue
        kind, key = checks[name]
        if value is None:
            continue
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise SourceError(module, node, f"{what}: {name}= has the wrong type ({type(value).__name__})")
        if name == "deprecated" and not value:
            continue
        out[key] = value
    if "choices" in out and not isinstance(out["choices"], list):
        raise SourceError(module, node, f"{what}: choices must be a list")
    return out


def _static(project: Project, module: Module, expr: ast.expr, what: str) -> Any:
    try:
        return project.constant(expr, module)
    except ValueError:
        raise UnresolvedValue(module, expr, f"{what} `{snippet(expr)}` cannot be resolved statically") from None


def _enum_component(module: Module, arg: ast.arg, what: str, kind: InputType, choices: list[Any]) -> dict[str, Any]:
    if kind.primitive not in ("str", "int"):
        raise SourceError(module, arg, f"{what}: choices are only supported on str and int inputs")
    expected = str if kind.primitive == "str" else int
    if not choices or any(type(c) is not expected for c in choices):
        raise SourceError(module, arg, f"{what}: choices must be a non-empty list of {kind.primitive} values")
    if arg.arg in _RESERVED_COMPONENTS:
        raise SourceError(module, arg, f"{what}: an input with choices cannot be named {arg.arg!r}")
    json_type = "string" if expected is str else "integer"
    return {"title": arg.arg, "description": "An enumeration.", "enum": choices, "type": json_type}


def _decorators(project: Project, target: _Target, output: dict[str, Any]) -> tuple[bool, int | None]:
    """(`@cog.streaming` present, `@cog.concurrent(max=N)` value)."""
    streaming, concurrency = False, None
    module = target.module
    for decorator in target.function.decorator_list:
        call = decorator if isinstance(decorator, ast.Call) else None
        symbol = project.resolve(call.func if call else decorator, module)
        name = symbol.qualified if symbol else None
        if name == "cog.streaming":
            if output.get("x-cog-array-type") != "iterator":
                raise SourceError(module, decorator, "@cog.streaming needs an Iterator or ConcatenateIterator output")
            streaming = True
        elif name == "cog.concurrent":
            concurrency = _concurrent_max(module, decorator, call)
            if concurrency > 1 and not isinstance(target.function, ast.AsyncFunctionDef):
                raise SourceError(module, decorator, f"@cog.concurrent(max={concurrency}) needs an async def")
    return streaming, concurrency


def _concurrent_max(module: Module, decorator: ast.AST, call: ast.Call | None) -> int:
    if call is None:
        return 1
    values = [k.value for k in call.keywords if k.arg == "max"] + list(call.args[:1])
    if not values:
        return 1
    node = values[0]
    if not isinstance(node, ast.Constant) or type(node.value) is not int or node.value < 1:
        raise SourceError(module, decorator, "@cog.concurrent(max=N) needs an integer literal N >= 1")
    return node.value
