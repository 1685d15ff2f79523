# ruff: noqa
from typing import Literal

from constants import SIZES

from cog import BasePredictor, Input

SCHEDULERS = ["ddim", "euler"]
EXTRA = SCHEDULERS + ["heun"]


class Predictor(BasePredictor):
    def predict(
        self,
        scheduler: str = Input(choices=EXTRA, default="euler"),
        size: str = Input(choices=list(SIZES.keys()), default="small"),
        steps: int = Input(choices=[10, 20, 50], default=20),
        fmt: str = Input(choices=["png", "webp"]),
        mode: Literal["fast", "slow"] = "fast",
    ) -> str:
        return scheduler
