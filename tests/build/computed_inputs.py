"""Real-model predictors whose Input() values are computed, so only importing them gives the schema."""

PREDICT = """
from cog import BasePredictor, Input


class Small:
    pass


class Large:
    pass


MODELS = {"small": Small, "large": Large}


def default_steps() -> int:
    return 4 * 7


class Inputs:
    prompt = Input(description="What to draw", default="a cat")
    seed = Input(description="Random seed", default=None)


print("importing the model module")


class Predictor(BasePredictor):
    def predict(
        self,
        model: str = Input(choices=list(MODELS.keys()), default="small"),
        steps: int = Input(default=default_steps(), ge=1, le=max(50, default_steps())),
        prompt: str = Inputs.prompt,
        seed: int = Inputs.seed,
    ) -> str:
        return f"{model} {steps} {prompt} {seed}"
"""

TRAIN = """
from cog import Input

from predict import Inputs, default_steps


def train(prompt: str = Inputs.prompt, epochs: int = Input(default=default_steps() // 7)) -> str:
    return prompt * epochs
"""

EXPECTED_INPUT = {
    "model": {"allOf": [{"$ref": "#/components/schemas/model"}], "default": "small", "x-order": 0},
    "steps": {"default": 28, "minimum": 1, "maximum": 50, "title": "Steps", "type": "integer", "x-order": 1},
    "prompt": {"default": "a cat", "description": "What to draw", "title": "Prompt", "type": "string", "x-order": 2},
    "seed": {"description": "Random seed", "title": "Seed", "type": "integer", "x-order": 3},
}
