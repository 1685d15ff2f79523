"""Returns many Python types to check output normalisation."""

import datetime
import enum
from dataclasses import dataclass
from typing import Any

from cog import BaseModel, BasePredictor, Input


class Color(enum.Enum):
    RED = "red"


@dataclass
class Point:
    x: int
    y: int


class Result(BaseModel):
    name: str
    score: float
    color: Color
    when: datetime.datetime


class Predictor(BasePredictor):
    def predict(
        self,
        kind: str = Input(
            default="model", choices=["model", "dataclass", "enum", "datetime", "tuple", "nested", "set"]
        ),
    ) -> Any:
        when = datetime.datetime(2024, 1, 2, 3, 4, 5)
        if kind == "model":
            return Result(name="a", score=0.5, color=Color.RED, when=when)
        if kind == "dataclass":
            return Point(1, 2)
        if kind == "enum":
            return Color.RED
        if kind == "datetime":
            return when
        if kind == "tuple":
            return (1, "two", 3.0)
        if kind == "set":
            return {7}
        return {"points": [Point(1, 2)], "colors": (Color.RED,), "when": when}
