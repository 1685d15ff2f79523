"""The in-image runner runs on the image's Python (cog.yaml ``python_version``, 3.10 at the oldest): its source
parses as Python 3.10 and uses no standard-library name added after 3.10 (ocibuild itself needs 3.11)."""

from __future__ import annotations

import ast
import glob
import os
import subprocess

import pytest

from tests.runner.harness import RUNNER_ROOT

OLDEST = (3, 10)

# Standard-library names added in 3.11-3.13 that code written on a newer Python reaches for (not every one).
NEWER_MODULES = {"tomllib", "wsgiref.types", "dbm.sqlite3", "sys.monitoring"}
NEWER_NAMES = {
    "asyncio": {"TaskGroup", "timeout", "timeout_at", "Runner", "Barrier", "Timeout", "eager_task_factory",
                "create_eager_task_factory", "QueueShutDown"},
    "base64": {"z85encode", "z85decode"},
    "calendar": {"Month", "Day"},
    "contextlib": {"chdir"},
    "copy": {"replace"},
    "datetime": {"UTC"},
    "enum": {"StrEnum", "ReprEnum", "EnumCheck", "FlagBoundary", "verify", "member", "nonmember", "global_enum",
             "property", "show_flag_values"},
    "hashlib": {"file_digest"},
    "http": {"HTTPMethod"},
    "inspect": {"getmembers_static", "markcoroutinefunction", "ismethodwrapper"},
    "itertools": {"batched"},
    "locale": {"getencoding"},
    "logging": {"getLevelNamesMapping", "getHandlerByName", "getHandlerNames"},
    "math": {"cbrt", "exp2", "sumprod", "fma"},
    "operator": {"call"},
    "os": {"process_cpu_count"},
    "os.path": {"splitroot", "isjunction"},
    "queue": {"ShutDown"},
    "re": {"NOFLAG"},
    "sys": {"exception", "monitoring", "_is_gil_enabled"},
    "types": {"get_original_bases"},
    "typing": {"Self", "LiteralString", "Never", "assert_never", "assert_type", "reveal_type", "Required",
               "NotRequired", "TypeVarTuple", "Unpack", "dataclass_transform", "get_overloads", "clear_overloads",
               "override", "TypeAliasType", "ReadOnly", "TypeIs", "get_protocol_members", "is_protocol", "NoDefault"},
    "warnings": {"deprecated"},
}  # fmt: skip
NEWER_BUILTINS = {"ExceptionGroup", "BaseExceptionGroup", "PythonFinalizationError"}
NEWER_METHODS = {"add_note", "uncancel", "cancelling", "is_junction", "with_segments", "full_match", "from_uri"}


def newer_than_oldest(source: str) -> list[str]:
    """What in ``source`` needs a Python newer than 3.10: syntax (as the parser says), then stdlib names."""
    try:
        tree = ast.parse(source, feature_version=OLDEST)
    except SyntaxError as exc:
        return [f"line {exc.lineno}: {exc.msg}"]
    modules: dict[str, str] = {}  # local name -> module it is bound to
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                modules[alias.asname or top] = alias.name if alias.asname else top
                if alias.name in NEWER_MODULES:
                    found.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                modules[alias.asname or alias.name] = full
                newer = NEWER_NAMES.get(node.module, set())
                if node.module in NEWER_MODULES or full in NEWER_MODULES or alias.name in newer:
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            base = _dotted(node.value, modules)
            if base is not None and node.attr in NEWER_NAMES.get(base, ()):
                found.append(f"line {node.lineno}: {base}.{node.attr}")
            elif node.attr in NEWER_METHODS:
                found.append(f"line {node.lineno}: .{node.attr}()")
        elif isinstance(node, ast.Name) and node.id in NEWER_BUILTINS:
            found.append(f"line {node.lineno}: {node.id}")
    return found


def _dotted(node: ast.expr, modules: dict[str, str]) -> str | None:
    """The module an expression like ``os.path`` names, through the file's imports (None: not a module)."""
    if isinstance(node, ast.Name):
        return modules.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, modules)
        return f"{base}.{node.attr}" if base is not None else None
    return None


def test_the_check_finds_what_3_10_lacks():
    source = (
        "import asyncio, datetime, os.path as osp\nfrom typing import Self\nimport tomllib\n"
        "try:\n    pass\nexcept* ValueError:\n    pass\n"
    )
    (problem,) = newer_than_oldest(source)
    assert "Exception groups are only supported in Python 3.11" in problem, problem
    source = (
        "import asyncio, datetime, os.path as osp\nfrom typing import Self\nimport tomllib\n"
        "async def f(e):\n    async with asyncio.TaskGroup():\n        e.add_note('x')\n"
        "    return datetime.UTC, osp.splitroot('/'), ExceptionGroup\n"
    )
    assert sorted(newer_than_oldest(source)) == sorted([
        "line 2: from typing import Self", "line 3: import tomllib", "line 5: asyncio.TaskGroup", "line 6: .add_note()",
        "line 7: datetime.UTC", "line 7: os.path.splitroot", "line 7: ExceptionGroup",
    ])  # fmt: skip
    assert newer_than_oldest("import asyncio\nasyncio.wait_for(x, 1)\nmatch x:\n    case 1:\n        pass\n") == []


@pytest.mark.parametrize("module", sorted(p.relative_to(RUNNER_ROOT).as_posix() for p in RUNNER_ROOT.rglob("*.py")))
def test_every_runner_module_runs_on_python_3_10(module: str):
    assert newer_than_oldest((RUNNER_ROOT / module).read_text()) == []


def _python_3_10() -> str | None:
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.10.*/bin/python3.10")))
    return found[-1] if found else None


@pytest.mark.skipif(_python_3_10() is None, reason="no Python 3.10 here (pyenv)")
def test_every_runner_module_imports_under_python_3_10():
    names = sorted(
        ".".join(p.relative_to(RUNNER_ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in RUNNER_ROOT.rglob("*.py")
    )
    check = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\nprint(sys.version)"
    env = {**os.environ, "PYTHONPATH": str(RUNNER_ROOT)}
    done = subprocess.run([_python_3_10(), "-S", "-c", check, *names], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("3.10."), done.stdout
