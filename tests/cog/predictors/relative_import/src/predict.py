# ruff: noqa
from cog import BasePredictor

from .types import Detection


class Predictor(BasePredictor):
    def predict(self, threshold: float = 0.5) -> Detection:
        raise NotImplementedError
