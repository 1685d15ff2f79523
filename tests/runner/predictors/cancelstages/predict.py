"""Predictions that spend their time outside ``run()``: downloading inputs, encoding or uploading outputs."""

import io
import pathlib
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from cog import BasePredictor, Input, Path


class SlowFile(io.RawIOBase):
    """A file output whose read takes a while; it touches ``marker`` when the runner starts reading it."""

    name = "slow.txt"

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        pathlib.Path(self.marker).touch()
        time.sleep(60)
        return b"late"


def _output(stage: str, marker: str) -> Any:
    print("user code ran")
    if stage == "encode":
        return SlowFile(marker)
    out = Path(tempfile.mkdtemp()) / "out.txt"
    out.write_text("done")
    return out


def _chunks(stage: str, marker: str) -> Iterator[Any]:
    yield "first"
    yield SlowFile(marker) if stage == "encode-chunk" else _output(stage, marker)


def _run(stage: str, marker: str) -> Any:
    return _chunks(stage, marker) if stage.endswith("-chunk") else _output(stage, marker)


class Predictor(BasePredictor):
    def predict(self, stage: str, marker: str = "", image: Path = Input(default=None)) -> Any:  # noqa: B008
        return _run(stage, marker)


class AsyncPredictor(BasePredictor):
    async def predict(self, stage: str, marker: str = "", image: Path = Input(default=None)) -> Any:  # noqa: B008
        return _run(stage, marker)
