"""Everything that knows Cog: cog.yaml, the static OpenAPI schema, CUDA choice and the image contract.

Names are imported on first use, so that ``ocibuild.cog.files`` (or an unchanged rebuild) loads no pydantic.
"""

from __future__ import annotations

from ocibuild.lazy import lazy_getattr

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

__getattr__ = lazy_getattr(__name__, _HOMES)
