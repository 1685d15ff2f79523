"""A streaming model: yields its output word by word, shown concatenated (like a language model's tokens)."""

import time

import cog
from cog import BasePredictor, ConcatenateIterator, Input


class Predictor(BasePredictor):
    @cog.streaming
    def predict(
        self,
        prompt: str = Input(description="Text to echo back, one word at a time"),
        repeat: int = Input(description="How many times to echo the prompt", default=1, ge=1, le=10),
        delay: float = Input(description="Seconds to wait between words", default=0.0, ge=0.0, le=1.0),
    ) -> ConcatenateIterator[str]:
        words = prompt.split()
        for round_ in range(repeat):
            for index, word in enumerate(words):
                if delay:
                    time.sleep(delay)
                yield word if round_ == 0 and index == 0 else " " + word
