#!/usr/bin/env python3
"""Prepare the GPU check (run here, before scripts/gpu_check.sh goes to the GPU machine).

Builds the GPU example's runner layer and code layer (uncompressed, tiny) with the Cog image contract into an
OCI layout at build/gpu-check/layout. The GPU machine adds a layer of its own and runs it with its Python.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ocibuild.cog.config import load_config
from ocibuild.cog.contract import image_contract
from ocibuild.cog.schema import generate_schema, openapi_json
from ocibuild.cogimage import SCHEMA_FILE
from ocibuild.oci import Compression, ImageConfig, Store, build_image, write_layout
from ocibuild.oci.image import History
from ocibuild.sources.project.code import code_layer
from ocibuild.sources.runner import runner_recipe

RUNNER_SITE = "/opt/ocibuild/runner-site"
REPO = Path(__file__).resolve().parent.parent


def main(example: Path, out: Path) -> None:
    loaded = load_config(example / "cog.yaml")
    schema = generate_schema(loaded.project_dir, loaded.predictor_ref, loaded.train_ref)
    contract = image_contract(loaded, schema, pip_freeze="", python_path="/usr/bin/python3")
    store = Store(out / "store")
    runner = runner_recipe(RUNNER_SITE, 0).materialise(store, Compression.NONE)
    code = code_layer(
        loaded.project_dir,
        store,
        0,
        exclude_paths=[".ocibuild", "ocibuild.lock"],
        extra_files={SCHEMA_FILE: openapi_json(schema.openapi).encode()},
        compression=Compression.NONE,
    )
    config = ImageConfig(
        env=[*contract.env, f"PYTHONPATH={RUNNER_SITE}"],
        cmd=contract.cmd,
        working_dir=contract.working_dir,
        exposed_ports=sorted(contract.exposed_ports),
        labels=contract.labels,
    )
    image = build_image([runner, code], config, history=[History("runner"), History("COPY . /src")])
    write_layout(out / "layout", image, ["latest"])
    print(f"{out / 'layout'}@{image.digest}")


if __name__ == "__main__":
    example = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "examples" / "gpu-torch"
    main(example, REPO / "build" / "gpu-check")
