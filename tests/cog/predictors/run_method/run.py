# ruff: noqa
from cog import BaseRunner, Input


class Runner(BaseRunner):
    def run(self, name: str = Input(default="world")) -> str:
        return f"hello {name}"

    def predict(self, ignored: int) -> int:
        return ignored
