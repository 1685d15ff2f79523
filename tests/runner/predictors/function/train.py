"""A function trainer."""

from cog import BaseModel, Input


class TrainingOutput(BaseModel):
    weights: str
    epochs: int


def train(epochs: int = Input(default=1, ge=1, le=5), name: str = Input(default="m")) -> TrainingOutput:
    print(f"training {name}")
    return TrainingOutput(weights=f"{name}-weights", epochs=epochs)
