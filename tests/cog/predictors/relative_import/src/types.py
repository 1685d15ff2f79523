# ruff: noqa
from pydantic import BaseModel


class Box(BaseModel):
    x: int
    y: int
    labels: list[str]


class Detection(BaseModel):
    boxes: list[Box]
    meta: dict[str, float]
