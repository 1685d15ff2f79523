# ruff: noqa
from cog import BasePredictor, Input


class Base(BasePredictor):
    def predict(self, scale: float = Input(default=1.5, le=10)) -> float:
        return scale
