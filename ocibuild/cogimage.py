"""Names of Cog's image contract that several rooms use: what a build writes and what ``run``/``predict`` read.

Shared like ``ocibuild.errors``: it imports nothing, and any room (``sources``, ``run``, ``cog``, ...) may import it.
"""

from __future__ import annotations

SCHEMA_FILE = ".cog/openapi_schema.json"
"""The OpenAPI document, relative to the image's WorkingDir (/src): coglet and our runner read it from their CWD."""
WEIGHTS_FILE = ".cog/weights.json"
"""Cog's managed weights: the sets the runner waits for (each ``<target>/.cog/ready``), relative to WorkingDir."""
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""Docker's default PATH: what Cog images put after their Python's bin directory, and what ``run`` gives an
image whose config names no PATH."""
TORCH_FAMILY = ("torch", "torchvision", "torchaudio")
"""The packages Cog ties to a CUDA build (torch first: its version picks the row of Cog's compatibility table)."""

WEIGHT_ARTIFACT_TYPE = "application/vnd.cog.weight.v1"
"""The ``artifactType`` of a managed weight set's manifest, listed in the image index beside the images."""
WEIGHT_NAME = "run.cog.weight.name"
WEIGHT_TARGET = "run.cog.weight.target"
WEIGHT_SET_DIGEST = "run.cog.weight.set-digest"
