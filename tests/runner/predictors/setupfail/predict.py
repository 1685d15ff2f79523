"""A predictor whose setup raises."""

from cog import BasePredictor


class Predictor(BasePredictor):
    def setup(self) -> None:
        print("loading weights")
        raise RuntimeError("weights missing")

    def predict(self, x: int = 1) -> int:
        return x
