# ruff: noqa
from cog import BasePredictor, Input


class Predictor(BasePredictor):
    def setup(self) -> None:
        self.prefix = "hello "

    def predict(
        self,
        prompt: str = Input(description="What to say", min_length=1, max_length=100, regex="^[a-z ]+$"),
        max_tokens: int = Input(description="Upper bound", default=16, ge=1, le=512),
        temperature: float = Input(default=0.75, ge=0.0, le=2.0),
        verbose: bool = False,
        old_flag: bool = Input(default=True, deprecated=True),
        seed: int = Input(default=None),
    ) -> str:
        return self.prefix + prompt
