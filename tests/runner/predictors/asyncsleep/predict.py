"""An async predictor that sleeps: concurrency slots and async cancel."""

import asyncio

from cog import BasePredictor, Input


class Predictor(BasePredictor):
    async def setup(self) -> None:
        await asyncio.sleep(0)

    async def predict(self, seconds: float = Input(default=0.0, ge=0.0), tag: str = Input(default="x")) -> str:
        print(f"start {tag}")
        await asyncio.sleep(seconds)
        return f"done {tag}"
