# ruff: noqa
import cog
from cog import AsyncConcatenateIterator, BaseRunner


class Runner(BaseRunner):
    @cog.streaming
    async def run(self, prompt: str) -> AsyncConcatenateIterator[str]:
        yield prompt
