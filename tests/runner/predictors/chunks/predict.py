"""A streaming predictor that yields quickly, records metrics in every mode, then lingers."""

import time
from collections.abc import Iterator

from cog import BasePredictor, Input, current_scope, streaming


class Predictor(BasePredictor):
    @streaming
    def predict(self, count: int = Input(default=4), linger: float = Input(default=0.0)) -> Iterator[str]:
        scope = current_scope()
        scope.record_metric("temperature", 0.5)
        for index in range(count):
            yield f"chunk-{index}"
        scope.record_metric("tokens", 2, mode="incr")
        scope.record_metric("tokens", 3, mode="increment")
        scope.record_metric("timing.decode.steps", 1, mode="append")
        scope.record_metric("timing.decode.steps", 2, mode="append")
        time.sleep(linger)
