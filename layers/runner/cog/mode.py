"""``cog.mode.Mode``: whether the runner serves predictions or trainings."""

from __future__ import annotations

import enum


class Mode(enum.Enum):
    PREDICT = "predict"
    TRAIN = "train"

    def __str__(self) -> str:
        return self.value
