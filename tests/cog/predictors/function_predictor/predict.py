# ruff: noqa
import cog


def predict(text: str, times: int = cog.Input(default=2, ge=1)) -> str:
    return text * times
