# ruff: noqa
from collections.abc import AsyncIterator

from cog import BaseRunner, concurrent


class Runner(BaseRunner):
    @concurrent(max=4)
    async def run(self, prompt: str) -> AsyncIterator[str]:
        yield prompt
