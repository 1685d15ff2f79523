"""Everything that knows Cog: cog.yaml, the static OpenAPI schema, CUDA choice and the image contract.

Names are imported on first use, so that ``ocibuild.cog.files`` (or an unchanged rebuild) loads no pydantic.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "Contract": "contract",
    "image_contract": "contract",
    "CudaChoice": "cuda",
    "resolve_cuda": "cuda",
    "LoadedConfig": "config",
    "completed_config_json": "config",
    "effective_concurrency": "config",
    "load_config": "config",
    "SchemaResult": "schema",
    "generate_schema": "schema",
    "openapi_json": "schema",
    "schema_command": "schema",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
