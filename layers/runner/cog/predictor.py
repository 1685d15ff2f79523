"""``BaseRunner``/``BasePredictor`` and loading a predictor from a ``file.py:Name`` reference."""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
from typing import Any

from cog.scope import Scope, current_scope
from cog.types import Path


class BaseRunner:
    """Subclass and define ``run()`` (or the older ``predict()``); optional ``setup(weights=None)``."""

    def setup(self, weights: Path | str | None = None) -> None:
        """Load the model once before the first prediction."""

    @property
    def scope(self) -> Scope:
        """The running prediction's scope (metrics, context)."""
        return current_scope()

    def record_metric(self, key: str, value: Any, mode: str = "replace") -> None:
        """Record a metric of the running prediction (``replace``, ``incr`` or ``append``)."""
        current_scope().record_metric(key, value, mode)


class BasePredictor(BaseRunner):
    """The pre-0.20 name of ``BaseRunner``."""


def import_file(module_path: str) -> Any:
    """Import a Python file by path, registering it in ``sys.modules`` under its stem."""
    name = os.path.splitext(os.path.basename(module_path))[0]
    spec = importlib.util.spec_from_file_location(name, module_path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load module from {module_path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_ref(ref: str) -> Any:
    """Resolve ``predict.py:Predictor`` (class → instance) or ``predict.py:run`` (function)."""
    module_path, _, name = ref.partition(":")
    module = import_file(module_path)
    if not name:
        name = next((candidate for candidate in ("Runner", "Predictor") if hasattr(module, candidate)), "")
        if not name:
            raise AttributeError(f"{module_path} has no Runner or Predictor")
    if not hasattr(module, name):
        raise AttributeError(f"{module_path} has no attribute {name!r}")
    target = getattr(module, name)
    return target() if inspect.isclass(target) else target


def entry_point(target: Any, method_names: tuple[str, ...]) -> Any:
    """The callable to run: a function target itself, else the first of ``method_names`` the class defines."""
    if not isinstance(target, BaseRunner) and inspect.isroutine(target):
        return target
    for method_name in method_names:
        for owner in type(target).__mro__:
            if owner in (BaseRunner, BasePredictor, object):
                break
            if callable(owner.__dict__.get(method_name)):
                return getattr(target, method_name)
    raise AttributeError(f"{type(target).__name__} defines none of {', '.join(method_names)}()")
