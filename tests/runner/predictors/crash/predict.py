"""A predictor that kills its own process: crash isolation."""

import ctypes
import os

from cog import BasePredictor, Input


class Predictor(BasePredictor):
    def predict(self, how: str = Input(default="exit", choices=["exit", "segfault", "none"])) -> str:
        if how == "exit":
            os._exit(3)
        if how == "segfault":
            ctypes.string_at(0)
        return "alive"
