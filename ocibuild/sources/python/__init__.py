"""Python dependencies of an image, driven by uv: read requirements, lock them for the image's target, and
install each locked distribution into layers that are shared byte for byte between images.

    reqs = read_requirements(project_dir, "requirements.txt", None)
    section = lock_python(reqs, target, torch_index_suffix=choice.torch_index_suffix)   # -> ocibuild.lock
    check_lock(section, reqs, target, torch_index_suffix=...)                             # on build
    layers = python_layers(section, target, store, source_date_epoch, project_dir=project_dir)
    labels["run.cog.pip_freeze"] = pip_freeze(section)
"""

from __future__ import annotations

from ocibuild.sources.python.layers import (
    LARGE_THRESHOLD,
    LayerGroup,
    group_distributions,
    pip_freeze,
    python_layers,
    python_recipes,
)
from ocibuild.sources.python.lock import check_lock, lock_python
from ocibuild.sources.python.requirements import Requirement, Requirements, read_requirements
from ocibuild.sources.python.target import PythonTarget

__all__ = [
    "LARGE_THRESHOLD",
    "LayerGroup",
    "PythonTarget",
    "Requirement",
    "Requirements",
    "check_lock",
    "group_distributions",
    "lock_python",
    "pip_freeze",
    "python_layers",
    "python_recipes",
    "read_requirements",
]
