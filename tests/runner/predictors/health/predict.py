"""A predictor with a user healthcheck driven by a marker file."""

import os

from cog import BasePredictor


class Predictor(BasePredictor):
    def healthcheck(self) -> bool:
        state = os.environ.get("HEALTH_FILE", "")
        if state and os.path.exists(state):
            with open(state) as marker:
                content = marker.read().strip()
            if content == "raise":
                raise RuntimeError("gpu lost")
            return False
        return True

    def predict(self, x: int = 1) -> int:
        return x * 2
