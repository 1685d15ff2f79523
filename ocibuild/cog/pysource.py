"""Read a Cog project's Python files with `ast` (never importing them): modules, imports, names, constants."""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

from ocibuild.errors import UserInputError

# Modules whose names we treat as one namespace (the SDK re-exports; typing backports).
_MODULE_ALIASES = {
    "typing_extensions": "typing",
    "collections.abc": "typing",
    "cog.types": "cog",
    "cog.input": "cog",
    "cog.model": "cog",
    "cog.predictor": "cog",
    "cog.base_predictor": "cog",
    "cog.base_runner": "cog",
    "pydantic.main": "pydantic",
}
_MAX_DEPTH = 32
# Deeper expressions are refused up front, so every recursive reader (and ast.unparse) stays far from the
# interpreter's recursion limit; Python's own parser gives up at about 3,000 levels.
MAX_EXPRESSION_DEPTH = 100
# A predictor file is a few KB; parsing 1 MiB of statements already takes ~3 s and ~400 MB, so refuse more.
MAX_SOURCE_BYTES = 1024 * 1024


class SourceError(UserInputError):
    """An unsupported construct in the project's Python source: `file.py:LINE: what and why`."""

    def __init__(self, module: Module, node: ast.AST | None, message: str) -> None:
        line = getattr(node, "lineno", 1)
        super().__init__(f"{module.rel}:{line}: {message}")


@dataclass(frozen=True)
class ImportedModule:
    """`import x.y as z`: the name refers to module `x.y`."""

    dotted: str


@dataclass(frozen=True)
class ImportedName:
    """`from .m import n`: the name refers to `n` in module `m` at relative `level`."""

    dotted: str
    level: int
    name: str


@dataclass
class Module:
    """One parsed project file and its top-level names."""

    path: Path
    rel: str
    tree: ast.Module
    imports: dict[str, ImportedModule | ImportedName] = field(default_factory=dict)
    defs: dict[str, ast.AST] = field(default_factory=dict)


@dataclass(frozen=True)
class Symbol:
    """What a name refers to: an external `qualified` name ("cog.Path"), or a local definition/module."""

    qualified: str
    module: Module | None = None
    node: ast.AST | None = None
    is_module: bool = False


def _normal(dotted: str) -> str:
    return _MODULE_ALIASES.get(dotted, dotted)


class Project:
    """The project directory, loading its modules on demand."""

    def __init__(self, project_dir: Path) -> None:
        self.root = project_dir.resolve()
        self._modules: dict[Path, Module] = {}

    def load(self, rel: str) -> Module:
        """The module at a path relative to the project (UserInputError if missing, outside it, or not Python)."""
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root):
            raise UserInputError(f"{rel}: outside the project directory {self.root}")
        if not path.is_file():
            raise UserInputError(f"{rel}: file not found in {self.root}")
        return self._load_path(path)

    def _load_path(self, path: Path) -> Module:
        if path in self._modules:
            return self._modules[path]
        rel = path.relative_to(self.root).as_posix()
        try:
            with path.open("rb") as file:
                data = file.read(MAX_SOURCE_BYTES + 1)
            if len(data) > MAX_SOURCE_BYTES:
                raise UserInputError(f"{rel}:1: larger than {MAX_SOURCE_BYTES // 1024} KiB; too large to read")
            tree = ast.parse(data.decode("utf-8"), filename=rel)
        except SyntaxError as exc:
            raise UserInputError(f"{rel}:{exc.lineno or 1}: syntax error: {exc.msg}") from None
        except (RecursionError, MemoryError):
            raise UserInputError(f"{rel}:1: nested too deeply for Python's parser (an expression or block)") from None
        except (UnicodeDecodeError, ValueError, OSError) as exc:
            raise UserInputError(f"{rel}:1: cannot read: {exc}") from None
        _check_nesting(tree, rel)
        module = Module(path, rel, tree)
        _index(module, tree.body)
        self._modules[path] = module
        return module

    def local_module(self, dotted: str, level: int, origin: Module) -> Module | None:
        """The project file for an import, relative to `origin` (level > 0) or the project root."""
        if level:
            base = origin.path.parent
            for _ in range(level - 1):
                base = base.parent
        else:
            base = self.root
        parts = [p for p in dotted.split(".") if p]
        target = base.joinpath(*parts)
        for candidate in (target.with_name(target.name + ".py") if parts else None, target / "__init__.py"):
            if candidate is not None and candidate.is_file() and candidate.resolve().is_relative_to(self.root):
                return self._load_path(candidate.resolve())
        return None

    def resolve(self, expr: ast.AST, module: Module, depth: int = 0) -> Symbol | None:
        """What a Name or dotted Attribute refers to, following local imports; None when unknown."""
        if depth > _MAX_DEPTH:
            return None
        if isinstance(expr, ast.Name):
            return self.lookup(expr.id, module, depth)
        if isinstance(expr, ast.Attribute):
            base = self.resolve(expr.value, module, depth + 1)
            if base is None or not base.is_module:
                return None
            if base.module is not None:
                return self.lookup(expr.attr, base.module, depth + 1) or self._submodule(base, expr.attr)
            return Symbol(f"{_normal(base.qualified)}.{expr.attr}", is_module=True)
        return None

    def lookup(self, name: str, module: Module, depth: int = 0) -> Symbol | None:
        """A top-level name of `module`: its own definition, an import, or a builtin."""
        if depth > _MAX_DEPTH:
            return None
        if name in module.defs:
            return Symbol(f"{module.rel}:{name}", module, module.defs[name])
        imported = module.imports.get(name)
        if isinstance(imported, ImportedModule):
            local = self.local_module(imported.dotted, 0, module)
            return Symbol(_normal(imported.dotted), local, is_module=True)
        if isinstance(imported, ImportedName):
            return self._from_import(imported, module, depth)
        if hasattr(builtins, name):
            return Symbol(f"builtins.{name}")
        return None

    def _from_import(self, imported: ImportedName, module: Module, depth: int) -> Symbol | None:
        source = self.local_module(imported.dotted, imported.level, module)
        if source is not None and source is not module:
            found = self.lookup(imported.name, source, depth + 1)
            if found is not None and not found.qualified.startswith("builtins."):
                return found
        submodule = self.local_module(f"{imported.dotted}.{imported.name}", imported.level, module)
        if submodule is not None:
            return Symbol(submodule.rel, submodule, is_module=True)
        if imported.level:
            return None
        # An external name may be a module itself (`from os import path`), so attributes stay resolvable.
        return Symbol(f"{_normal(imported.dotted)}.{imported.name}", is_module=True)

    def _submodule(self, base: Symbol, attr: str) -> Symbol | None:
        """`pkg.sub` where `pkg` is a local package (its `__init__.py`)."""
        if base.module is None or base.module.path.name != "__init__.py":
            return None
        found = self.local_module(attr, 1, base.module)
        return Symbol(found.rel, found, is_module=True) if found else None

    def constant(self, expr: ast.AST, module: Module, depth: int = 0) -> Any:
        """Evaluate a static expression: literals, module constants, `list(D)`, `D.keys()`, `A + B`.

        Raises ValueError when the value cannot be known without running the code.
        """
        if depth > _MAX_DEPTH:
            raise ValueError("too deeply nested")
        if isinstance(expr, ast.Constant):
            return expr.value
        if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub | ast.UAdd):
            value = self.constant(expr.operand, module, depth + 1)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return -value if isinstance(expr.op, ast.USub) else value
        elif isinstance(expr, ast.List | ast.Tuple | ast.Set):
            return [self.constant(e, module, depth + 1) for e in expr.elts]
        elif isinstance(expr, ast.Dict):
            if any(k is None for k in expr.keys):
                raise ValueError("dict unpacking")
            return {
                self.constant(k, module, depth + 1): self.constant(v, module, depth + 1)
                for k, v in zip(expr.keys, expr.values, strict=True)
            }
        elif isinstance(expr, ast.Name | ast.Attribute):
            symbol = self.resolve(expr, module)
            if symbol is not None and symbol.module is not None and isinstance(symbol.node, ast.expr):
                return self.constant(symbol.node, symbol.module, depth + 1)
        elif isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
            left, right = self.constant(expr.left, module, depth + 1), self.constant(expr.right, module, depth + 1)
            if type(left) is type(right) and isinstance(left, list | str | int | float):
                return left + right
        elif isinstance(expr, ast.Call):
            return self._constant_call(expr, module, depth)
        raise ValueError("not a static value")

    def _constant_call(self, expr: ast.Call, module: Module, depth: int) -> Any:
        func = expr.func
        if isinstance(func, ast.Attribute) and func.attr == "keys" and not expr.args:
            value = self.constant(func.value, module, depth + 1)
            if isinstance(value, dict):
                return list(value)
        if isinstance(func, ast.Name) and func.id in ("list", "tuple", "sorted") and len(expr.args) == 1:
            value = self.constant(expr.args[0], module, depth + 1)
            if isinstance(value, dict | list):
                items = list(value)
                return sorted(items) if func.id == "sorted" else items
        raise ValueError("not a static value")


def snippet(expr: ast.AST, limit: int = 60) -> str:
    """The source of `expr` for a one-line message, shortened to `limit` characters."""
    text = ast.unparse(expr)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_nesting(tree: ast.Module, rel: str) -> None:
    """UserInputError naming the line of an expression nested deeper than MAX_EXPRESSION_DEPTH (no recursion)."""
    stack: list[tuple[ast.AST, int, int]] = [(tree, 0, 1)]
    while stack:
        node, depth, line = stack.pop()
        for child in ast.iter_child_nodes(node):
            inner = depth + isinstance(child, ast.expr)
            child_line = getattr(child, "lineno", line)
            if inner > MAX_EXPRESSION_DEPTH:
                message = f"an expression nested more than {MAX_EXPRESSION_DEPTH} levels deep; too deep to read"
                raise UserInputError(f"{rel}:{child_line}: {message}")
            stack.append((child, inner, child_line))


def _index(module: Module, body: list[ast.stmt]) -> None:
    """Record top-level imports and definitions, looking into `if`/`try` blocks too (in source order)."""
    pending: list[Iterator[ast.stmt]] = [iter(body)]
    while pending:
        stmt = next(pending[-1], None)
        if stmt is None:
            pending.pop()
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.asname:
                    module.imports[alias.asname] = ImportedModule(alias.name)
                else:
                    top = alias.name.split(".")[0]
                    module.imports[top] = ImportedModule(top)
        elif isinstance(stmt, ast.ImportFrom):
            for alias in stmt.names:
                if alias.name != "*":
                    module.imports[alias.asname or alias.name] = ImportedName(stmt.module or "", stmt.level, alias.name)
        elif isinstance(stmt, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            module.defs[stmt.name] = stmt
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            module.defs[stmt.targets[0].id] = stmt.value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            module.defs[stmt.target.id] = stmt.value
        elif isinstance(stmt, ast.If):
            pending.append(chain(stmt.body, stmt.orelse))
        elif isinstance(stmt, ast.Try):
            pending.append(chain(stmt.body, *(handler.body for handler in stmt.handlers)))
