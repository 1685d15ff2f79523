# ruff: noqa
"""Inputs Cog's static generator accepts as plain JSON: TypedDicts and `Annotated[X, cog.Opaque]` (also lists)."""

from typing import Annotated, List, Optional, TypedDict

from cog import BaseModel, BasePredictor, Input, Opaque, Path
from vendor import Handle


class Payload(TypedDict):
    name: str
    count: int


class Output(BaseModel):
    handle: Annotated[Handle, Opaque]
    handles: Annotated[List[Handle], Opaque]
    maybe: Annotated[Optional[Handle], Opaque]


class Predictor(BasePredictor):
    def predict(
        self,
        data: Payload,
        items: list[Payload] | None = None,
        handle: Annotated[Handle, Opaque] = Input(description="Passed through"),
        handles: Annotated[List[Handle], Opaque] = Input(),
        each: list[Annotated[Handle, Opaque]] = Input(default=[]),
        bare: Annotated[list, Opaque] = Input(default=None),
        maybe: Annotated[Optional[Handle], Opaque] = None,
        image: list[Path] = Input(default=None, accept="image/*"),
    ) -> Output:
        return Output(handle=handle, handles=handles, maybe=maybe)
