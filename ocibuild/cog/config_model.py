"""The shape of cog.yaml (Cog's config_schema_v1.0.json at 0.22) as pydantic models: types and keys only.

Rules that span fields (exclusivity, formats, deny-lists) live in config_rules.py.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SecretMount(_Strict):
    """`RUN --mount=type=secret,id=...,target=...`."""

    type: Literal["secret"]
    id: str
    target: str


class RunCommand(_Strict):
    """One `build.run` entry in its long form."""

    command: str
    mounts: list[SecretMount] = Field(default_factory=list)


class Build(_Strict):
    """The `build` section."""

    python_version: str
    gpu: bool = False
    cuda: str | None = None
    cudnn: str | None = None
    python_requirements: str | None = None
    python_packages: list[str] | None = None
    system_packages: list[str] | None = None
    run: list[str | RunCommand] | None = None
    pre_install: list[str] | None = None
    sdk_version: str | None = None

    def run_commands(self) -> list[RunCommand]:
        """`build.run` in its long form, then the deprecated `pre_install` (Cog runs them in that order)."""
        items = [RunCommand(command=r) if isinstance(r, str) else r for r in self.run or []]
        return items + [RunCommand(command=c) for c in self.pre_install or []]


class Concurrency(_Strict):
    """The `concurrency` section (`max` is deprecated in favour of `@cog.concurrent`)."""

    max: int | None = None
    default_target: int | None = None


class WeightSource(_Strict):
    """Where a managed weight comes from."""

    uri: str
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)


class Weight(_Strict):
    """One managed weight set, mounted at `target`."""

    name: str
    target: str
    source: WeightSource | list[WeightSource]

    def sources(self) -> list[WeightSource]:
        """`source` as a list."""
        return self.source if isinstance(self.source, list) else [self.source]


class CogConfig(_Strict):
    """A whole cog.yaml."""

    build: Build
    image: str | None = None
    model: str | None = None
    run: str | None = None
    predict: str | None = None
    train: str | None = None
    concurrency: Concurrency | None = None
    environment: list[str] | None = None
    weights: list[Weight] | None = None

    @property
    def predictor_ref(self) -> str | None:
        """The predictor reference, from `run` or the deprecated `predict`."""
        return self.run or self.predict

    def environment_pairs(self) -> dict[str, str]:
        """The `environment` entries as an ordered name → value mapping."""
        return dict(entry.split("=", 1) for entry in self.environment or [])
