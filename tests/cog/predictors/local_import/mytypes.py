# ruff: noqa
from typing import Optional

from cog import BaseModel, Path


class Caption(BaseModel):
    text: str
    score: float = 0.0
    image: Optional[Path] = None
