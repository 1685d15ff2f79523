"""Python type annotations → JSON Schema, for predictor inputs and outputs (Cog's pkg/schema rules)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from ocibuild.cog.pysource import Module, Project, SourceError, Symbol, snippet

PRIMITIVES: dict[str, tuple[str, dict[str, Any]]] = {
    "builtins.str": ("str", {"type": "string"}),
    "builtins.int": ("int", {"type": "integer"}),
    "builtins.float": ("float", {"type": "number"}),
    "builtins.bool": ("bool", {"type": "boolean"}),
    "cog.Path": ("Path", {"type": "string", "format": "uri"}),
    "cog.File": ("File", {"type": "string", "format": "uri"}),
    "cog.URLPath": ("Path", {"type": "string", "format": "uri"}),
    "os.PathLike": ("Path", {"type": "string", "format": "uri"}),
    "cog.Secret": ("Secret", {"type": "string", "format": "password", "writeOnly": True, "x-cog-secret": True}),
}
_OPAQUE = {"builtins.dict", "typing.Dict", "typing.Any", "typing.Mapping"}
_LISTS = {"builtins.list", "typing.List", "typing.Sequence"}
_JSON_NATIVE = {"str", "int", "float", "bool", "list", "object"}
_BASE_MODELS = {"cog.BaseModel", "pydantic.BaseModel"}
_TYPED_DICTS = {"typing.TypedDict"}
_ITERATORS = {"typing.Iterator", "typing.AsyncIterator"}
_CONCAT_ITERATORS = {"cog.ConcatenateIterator", "cog.AsyncConcatenateIterator"}
_INPUT_HELP = "use str, int, float, bool, Path, File, Secret, list[T], dict, Any, Literal, or Optional/unions of those"


@dataclass(frozen=True)
class InputType:
    """An input annotation: its schema (without `nullable`), and what the property rules need to know."""

    schema: dict[str, Any]
    primitive: str | None = None
    nullable: bool = False
    union: bool = False
    literal: tuple[Any, ...] | None = None


class TypeReader:
    """Turns annotation expressions of one project into schemas, resolving names through `Project`."""

    def __init__(self, project: Project) -> None:
        self.project = project

    def _name(self, expr: ast.AST, module: Module) -> Symbol | None:
        return self.project.resolve(expr, module)

    def _split(self, expr: ast.AST, module: Module) -> tuple[Symbol | None, list[ast.expr]]:
        """`X[A, B]` → (symbol of X, [A, B]); a bare name → (symbol, [])."""
        if isinstance(expr, ast.Subscript):
            args = expr.slice.elts if isinstance(expr.slice, ast.Tuple) else [expr.slice]
            return self._name(expr.value, module), list(args)
        return self._name(expr, module), []

    def _forward(self, expr: ast.AST, module: Module) -> ast.AST:
        """A string annotation ("Output") parsed into an expression."""
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            try:
                parsed = ast.parse(expr.value, mode="eval").body
            except SyntaxError:
                raise SourceError(module, expr, f"annotation {expr.value!r} is not valid Python") from None
            return ast.copy_location(parsed, expr)
        return expr

    def _members(self, expr: ast.AST, module: Module) -> list[ast.expr] | None:
        """The members of `A | B` or `Union[A, B]` / `Optional[A]`; None when not a union."""
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitOr):
            left = self._members(expr.left, module) or [expr.left]
            right = self._members(expr.right, module) or [expr.right]
            return left + right
        symbol, args = self._split(expr, module)
        if symbol is not None and symbol.qualified == "typing.Union" and args:
            return args
        if symbol is not None and symbol.qualified == "typing.Optional" and len(args) == 1:
            return [args[0], ast.copy_location(ast.Constant(None), expr)]
        return None

    @staticmethod
    def _is_none(expr: ast.AST) -> bool:
        return isinstance(expr, ast.Constant) and expr.value is None

    def _unannotate(self, expr: ast.AST, module: Module) -> tuple[ast.AST, bool]:
        """Strip `Annotated[X, ...]`; the flag says whether `cog.Opaque` was among the extras."""
        expr = self._forward(expr, module)
        symbol, args = self._split(expr, module)
        if symbol is not None and symbol.qualified == "typing.Annotated" and args:
            opaque = any((s := self._name(a, module)) is not None and s.qualified == "cog.Opaque" for a in args[1:])
            return self._forward(args[0], module), opaque
        return expr, False

    def _opaque(self, inner: ast.AST, module: Module) -> tuple[dict[str, Any], bool]:
        """`Annotated[X, cog.Opaque]`: an object passed through as is (an array of them when X is a list), and
        whether X was Optional."""
        members = self._members(inner, module)
        nullable = members is not None and any(self._is_none(m) for m in members)
        rest = [m for m in members if not self._is_none(m)] if members is not None else [inner]
        symbol, args = self._split(rest[0], module) if len(rest) == 1 else (None, [])
        if symbol is not None and symbol.qualified in _LISTS and len(args) <= 1:
            return {"type": "array", "items": {"type": "object"}}, nullable
        return {"type": "object"}, nullable

    # ----- inputs -----------------------------------------------------------------------------------------

    def input_type(self, expr: ast.AST, module: Module, what: str) -> InputType:
        """The schema of an input parameter's annotation; SourceError for unsupported annotations."""
        expr, opaque = self._unannotate(expr, module)
        if opaque:
            schema, nullable = self._opaque(expr, module)
            return InputType(schema, "list" if schema["type"] == "array" else "object", nullable=nullable)
        members = self._members(expr, module)
        if members is not None:
            return self._input_union(expr, members, module, what)
        return self._input_single(expr, module, what)

    def _input_union(self, expr: ast.AST, members: list[ast.expr], module: Module, what: str) -> InputType:
        nullable = any(self._is_none(m) for m in members)
        rest = [m for m in members if not self._is_none(m)]
        if not rest:
            raise SourceError(module, expr, f"{what}: type None is not a supported input type")
        if len(rest) == 1:
            inner = self.input_type(rest[0], module, what)
            return InputType(inner.schema, inner.primitive, nullable or inner.nullable, inner.union, inner.literal)
        variants = [self._input_single(m, module, what) for m in rest]
        for member, variant in zip(rest, variants, strict=True):
            kind = variant.primitive or variant.schema.get("type")
            if kind not in _JSON_NATIVE or variant.literal is not None:
                raise SourceError(
                    module,
                    member,
                    f"{what}: {snippet(member)} cannot be part of a union; unions may only combine "
                    "str, int, float, bool, list and dict",
                )
        schemas = [{**v.schema, "nullable": True} if nullable else v.schema for v in variants]
        return InputType({"anyOf": schemas}, nullable=nullable, union=True)

    def _input_single(self, expr: ast.AST, module: Module, what: str) -> InputType:
        expr, opaque = self._unannotate(expr, module)
        if opaque:
            schema, _ = self._opaque(expr, module)
            return InputType(schema, "list" if schema["type"] == "array" else "object")
        symbol, args = self._split(expr, module)
        name = symbol.qualified if symbol else None
        if name in PRIMITIVES and not args:
            primitive, schema = PRIMITIVES[name]
            return InputType(dict(schema), primitive)
        if name in _OPAQUE:
            return InputType({"type": "object"}, "object")
        if name in _LISTS:
            if len(args) > 1:
                raise SourceError(module, expr, f"{what}: list takes one type argument")
            items = self._input_single(args[0], module, what).schema if args else {"type": "object"}
            return InputType({"type": "array", "items": items}, "list")
        if name == "typing.Literal" and args:
            return self._literal(expr, args, module, what)
        if self._members(expr, module) is not None:
            return self.input_type(expr, module, what)
        if symbol is not None and symbol.module is not None and isinstance(symbol.node, ast.ClassDef):
            if not args and self._class_kind(symbol) == "typeddict":
                return InputType({"type": "object"}, "object")
            raise SourceError(
                module, expr, f"{what}: class {snippet(expr)} is not supported as an input type; {_INPUT_HELP}"
            )
        raise SourceError(module, expr, f"{what}: type {snippet(expr)} is not supported; {_INPUT_HELP}")

    def _literal(self, expr: ast.AST, args: list[ast.expr], module: Module, what: str) -> InputType:
        values = []
        for arg in args:
            if not isinstance(arg, ast.Constant) or type(arg.value) not in (str, int):
                raise SourceError(module, arg, f"{what}: Literal values must be str or int constants")
            values.append(arg.value)
        kinds = {type(v) for v in values}
        if len(kinds) != 1:
            raise SourceError(module, expr, f"{what}: Literal values must all be str or all be int")
        primitive = "str" if kinds == {str} else "int"
        return InputType(dict(PRIMITIVES[f"builtins.{primitive}"][1]), primitive, literal=tuple(values))

    # ----- outputs ----------------------------------------------------------------------------------------

    def output_schema(self, expr: ast.AST, module: Module, seen: frozenset[str] = frozenset()) -> dict[str, Any]:
        """The schema of a return annotation (no top-level title); SourceError for unsupported types."""
        expr, opaque = self._unannotate(expr, module)
        if self._members(expr, module) is not None:
            raise SourceError(
                module,
                expr,
                f"output type {snippet(expr)} is not supported: outputs cannot be Optional or a Union",
            )
        if opaque:
            return self._opaque(expr, module)[0]
        return self._output_inner(expr, module, seen)

    def _output_inner(self, expr: ast.AST, module: Module, seen: frozenset[str]) -> dict[str, Any]:
        symbol, args = self._split(expr, module)
        name = symbol.qualified if symbol else None
        if self._is_none(expr):
            raise SourceError(module, expr, "output type None is not supported: run() must return a value")
        if name in PRIMITIVES and not args:
            return dict(PRIMITIVES[name][1])
        if name in _OPAQUE:
            if name in ("builtins.dict", "typing.Dict") and len(args) == 2:
                return {"type": "object", "additionalProperties": self.output_schema(args[1], module, seen)}
            return {"type": "object"}
        if name in _LISTS:
            items = self.output_schema(args[0], module, seen) if args else {"type": "object"}
            return {"type": "array", "items": items}
        if name in _ITERATORS and len(args) == 1:
            return {"type": "array", "items": self.output_schema(args[0], module, seen), "x-cog-array-type": "iterator"}
        if name in _CONCAT_ITERATORS and len(args) == 1:
            item = self._name(args[0], module)
            if item is None or item.qualified != "builtins.str":
                raise SourceError(module, expr, f"{snippet(expr)}: ConcatenateIterator must yield str")
            return {
                "type": "array",
                "items": {"type": "string"},
                "x-cog-array-type": "iterator",
                "x-cog-array-display": "concatenate",
            }
        if symbol is not None and isinstance(symbol.node, ast.ClassDef) and symbol.module is not None and not args:
            return self._object(symbol, seen)
        raise SourceError(
            module,
            expr,
            f"output type {snippet(expr)} is not supported; use a primitive, Path, list[T], dict[str, T], "
            "a BaseModel or TypedDict class, Iterator[T] or ConcatenateIterator[str]",
        )

    def _class_kind(self, symbol: Symbol, depth: int = 0) -> str | None:
        """ "model" for BaseModel subclasses, "typeddict" for TypedDicts, else None (through local bases)."""
        node = symbol.node
        if not isinstance(node, ast.ClassDef) or symbol.module is None or depth > 16:
            return None
        for base in node.bases:
            found = self._name(base, symbol.module)
            if found is None:
                continue
            if found.qualified in _BASE_MODELS:
                return "model"
            if found.qualified in _TYPED_DICTS:
                return "typeddict"
            kind = self._class_kind(found, depth + 1)
            if kind:
                return kind
        return None

    def _fields(self, symbol: Symbol, total: bool, depth: int = 0) -> list[tuple[ast.AnnAssign, Module, bool]]:
        """Annotated class attributes, inherited local ones first; each with its module and TypedDict totality."""
        node, module = symbol.node, symbol.module
        assert isinstance(node, ast.ClassDef) and module is not None
        found: list[tuple[ast.AnnAssign, Module, bool]] = []
        for base in node.bases:
            base_symbol = self._name(base, module)
            if base_symbol is not None and isinstance(base_symbol.node, ast.ClassDef) and depth < 16:
                found += self._fields(base_symbol, _totality(base_symbol.node), depth + 1)
        for stmt in node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                found = [f for f in found if f[0].target.id != stmt.target.id]  # type: ignore[union-attr]
                found.append((stmt, module, total))
        return found

    def _object(self, symbol: Symbol, seen: frozenset[str]) -> dict[str, Any]:
        node, module = symbol.node, symbol.module
        assert isinstance(node, ast.ClassDef) and module is not None
        kind = self._class_kind(symbol)
        if kind is None:
            raise SourceError(
                module, node, f"output class {node.name} must subclass cog.BaseModel, pydantic.BaseModel or TypedDict"
            )
        if symbol.qualified in seen:
            return {"type": "object"}
        seen = seen | {symbol.qualified}
        properties: dict[str, Any] = {}
        required: list[str] = []
        for stmt, field_module, total in self._fields(symbol, _totality(node)):
            name = stmt.target.id  # type: ignore[union-attr]
            if name.startswith("_") or self._is_classvar(stmt.annotation, field_module):
                continue
            prop, is_required = self._field(stmt, field_module, seen, kind, total)
            properties[name] = {**prop, "title": title_case(name)}
            if is_required:
                required.append(name)
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        return schema

    def _is_classvar(self, annotation: ast.AST, module: Module) -> bool:
        symbol, _ = self._split(self._forward(annotation, module), module)
        return symbol is not None and symbol.qualified == "typing.ClassVar"

    def _field(
        self, stmt: ast.AnnAssign, module: Module, seen: frozenset[str], kind: str, total: bool
    ) -> tuple[dict[str, Any], bool]:
        annotation, opaque = self._unannotate(stmt.annotation, module)
        required = total if kind == "typeddict" else stmt.value is None
        if opaque:
            schema, nullable = self._opaque(annotation, module)
            return ({**schema, "nullable": True}, False) if nullable else (schema, required)
        symbol, args = self._split(annotation, module)
        if kind == "typeddict" and symbol is not None and symbol.qualified in ("typing.Required", "typing.NotRequired"):
            required = symbol.qualified == "typing.Required"
            annotation, _ = self._unannotate(args[0], module)
        members = self._members(annotation, module)
        if members is not None:
            rest = [m for m in members if not self._is_none(m)]
            if len(rest) != 1 or len(rest) == len(members):
                raise SourceError(module, stmt, "union fields are not supported in outputs (Optional[T] is)")
            return {**self.output_schema(rest[0], module, seen), "nullable": True}, False
        return self.output_schema(annotation, module, seen), required


def _totality(node: ast.ClassDef) -> bool:
    for keyword in node.keywords:
        if keyword.arg == "total" and isinstance(keyword.value, ast.Constant):
            return bool(keyword.value.value)
    return True


def title_case(name: str) -> str:
    """Cog's property titles: `max_tokens` → `Max Tokens`."""
    return " ".join(word[:1].upper() + word[1:] for word in name.split("_") if word)
