"""Plan: a pure value saying which layers an image is made of, in order, each named by the key of its inputs.

Stamping follows content: layers made only from pinned inputs (base, system_packages, Python distributions,
runner, weights) carry ``PINNED_EPOCH`` whatever the project or its history, so the same wheel gives the same
layer at every commit of every project; SOURCE_DATE_EPOCH stamps only the project's own layers (build.run
output, code) and the config. ``ocibuild plan --json`` prints a plan for CI and for other builders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ocibuild.cog.contract import Contract
from ocibuild.oci import Compression, LayerRecipe, Platform, Store
from ocibuild.run.buildrun import BuildCommand
from ocibuild.sources.project.weights import WeightFile

PINNED_EPOCH = 0
"""The file times of layers made from pinned inputs (the Unix epoch, as ko and rules_oci use)."""
PINNED, PROJECT = "pinned", "project"


@dataclass(frozen=True)
class LayerStep:
    """One layer: its name, history text, stamping and recipe (None for build.run, keyed by the layers below)."""

    name: str
    created_by: str
    stamping: str
    recipe: LayerRecipe | None = None
    command: BuildCommand | None = None


@dataclass(frozen=True)
class PlatformPlan:
    """The layers of one platform's image, lowest first, and its config."""

    platform: Platform
    lower: list[LayerStep]
    """Pinned layers: base, system_packages, Python distributions, runner."""
    run: list[LayerStep]
    """build.run commands, each on top of everything before it."""
    code: LayerStep
    contract: Contract
    toolbox: LayerStep | None = None
    """curl, wget, git and pip under the build.run commands only; never a layer of the image."""

    @property
    def steps(self) -> list[LayerStep]:
        return [*self.lower, *self.run, self.code]

    @property
    def materialised(self) -> list[LayerStep]:
        """Every step with a recipe, the build-only toolbox included."""
        return [s for s in (*self.steps, self.toolbox) if s is not None and s.recipe is not None]


@dataclass(frozen=True)
class Plan:
    """Every platform's layers, the weights shared by all of them, and the stamps."""

    platforms: list[PlatformPlan]
    weights: list[WeightFile]
    source_date_epoch: int
    compression: Compression
    lock_changes: list[str] = field(default_factory=list)

    def to_json(self, store: Store | None = None) -> dict[str, Any]:
        """The plan as JSON: steps with their input keys, and layer digests where ``store`` holds them."""
        return {
            "source_date_epoch": self.source_date_epoch,
            "pinned_epoch": PINNED_EPOCH,
            "compression": self.compression.value,
            "lock_changes": self.lock_changes,
            "platforms": [
                {
                    "platform": str(p.platform),
                    "env": p.contract.env,
                    "steps": [self._step_json(step, store) for step in p.steps]
                    + [{"name": "weights", "created_by": "COPY weights", "stamping": PINNED, "files": self._files()}],
                    "build_only": [self._step_json(p.toolbox, store)] if p.toolbox else [],
                }
                for p in self.platforms
            ],
        }

    def _files(self) -> list[str]:
        return [w.path for w in self.weights]

    def _step_json(self, step: LayerStep, store: Store | None) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": step.name, "created_by": step.created_by, "stamping": step.stamping}
        if step.recipe is not None:
            doc["key"] = step.recipe.cache_key(self.compression)
            cached = step.recipe.cached(store, self.compression) if store is not None else None
            doc["digest"] = cached.digest if cached is not None else None
        else:
            doc["key"] = None  # build.run: keyed by the digests of the layers below, known once they exist
        return doc
