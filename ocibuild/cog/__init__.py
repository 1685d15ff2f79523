"""Everything that knows Cog: cog.yaml, the static OpenAPI schema, CUDA choice and the image contract."""

from ocibuild.cog.config import LoadedConfig, completed_config_json, effective_concurrency, load_config
from ocibuild.cog.contract import Contract, image_contract
from ocibuild.cog.cuda import CudaChoice, resolve_cuda
from ocibuild.cog.schema import SchemaResult, generate_schema, openapi_json, schema_command

__all__ = [
    "Contract",
    "CudaChoice",
    "LoadedConfig",
    "SchemaResult",
    "completed_config_json",
    "effective_concurrency",
    "generate_schema",
    "image_contract",
    "load_config",
    "openapi_json",
    "resolve_cuda",
    "schema_command",
]
