# ruff: noqa
from typing import Any, Optional, Union

from cog import BasePredictor, Input, Path


class Predictor(BasePredictor):
    def predict(
        self,
        a: Optional[int] = Input(default=None, ge=0),
        b: str | None = None,
        c: Union[str, int] = Input(description="either"),
        d: str | int | None = Input(default=None),
        e: list[str] = Input(default=["x"]),
        f: list[Path] = Input(),
        g: dict = Input(default={}),
        h: Any = None,
        i: list = Input(default=[]),
    ) -> dict:
        return {}
