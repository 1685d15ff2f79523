# ruff: noqa
from typing import Iterator

from cog import BasePredictor, Path


class Predictor(BasePredictor):
    def predict(self, n: int = 3) -> Iterator[Path]:
        yield from []
