"""A function predictor."""

from cog import Input


def run(text: str = Input(default="hi"), times: int = Input(default=2, ge=1)) -> str:
    return text * times
