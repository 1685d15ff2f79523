"""A streaming generator predictor (SSE)."""

import time

import cog
from cog import BasePredictor, ConcatenateIterator, Input


class Predictor(BasePredictor):
    @cog.streaming
    def predict(
        self, words: int = Input(default=3, ge=1, le=50), delay: float = Input(default=0.0)
    ) -> ConcatenateIterator[str]:
        for i in range(words):
            print(f"word {i}")
            self.record_metric("words", i + 1)
            yield f"w{i} "
            time.sleep(delay)
