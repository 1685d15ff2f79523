"""Cog's Python SDK, as bundled with the ocibuild runner (standard library only).

User code imports it unchanged: ``from cog import BaseRunner, Input, Path``.
"""

from __future__ import annotations

import sys
from typing import Any

from cog.decorators import concurrent, streaming
from cog.errors import CancelationException
from cog.input import FieldInfo, Input
from cog.model import BaseModel
from cog.predictor import BasePredictor, BaseRunner
from cog.scope import current_scope
from cog.types import AsyncConcatenateIterator, ConcatenateIterator, File, Path, Secret, URLFile, URLPath

__version__ = "0.23.1"
"""The Cog SDK API level this package implements."""

RUNNER_VERSION = "0.1.0"
"""The version of the ocibuild runner itself."""


class ExperimentalFeatureWarning(FutureWarning):
    """Deprecated: kept so models that filter it keep importing."""


class Opaque:
    """``Annotated[T, cog.Opaque]`` marks an input passed through without validation."""


def emit_metric(name: str, value: Any) -> None:
    """Deprecated: use ``current_scope().record_metric(name, value)``."""
    print("cog: emit_metric() is deprecated; use current_scope().record_metric()", file=sys.stderr)
    current_scope().record_metric(name, value)


__all__ = [
    "AsyncConcatenateIterator",
    "BaseModel",
    "BasePredictor",
    "BaseRunner",
    "CancelationException",
    "ConcatenateIterator",
    "ExperimentalFeatureWarning",
    "FieldInfo",
    "File",
    "Input",
    "Opaque",
    "Path",
    "Secret",
    "URLFile",
    "URLPath",
    "__version__",
    "concurrent",
    "current_scope",
    "emit_metric",
    "streaming",
]
