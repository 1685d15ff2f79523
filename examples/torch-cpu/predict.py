"""A torch model on the CPU whose weights live in weights.safetensors (written by make_weights.py)."""

from pathlib import Path

import torch

from cog import BasePredictor, Input
from cog.weights import load_safetensors

WEIGHTS = Path(__file__).resolve().parent / "weights.safetensors"


class Predictor(BasePredictor):
    def setup(self) -> None:
        torch.set_num_threads(1)
        tensors = load_safetensors(WEIGHTS, device="cpu")
        weight = tensors["linear.weight"]
        self.model = torch.nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.model.weight.copy_(weight)
            self.model.bias.copy_(tensors["linear.bias"])
        self.model.eval()
        print(f"loaded {WEIGHTS.name} on cpu with torch {torch.__version__}")

    def predict(
        self, values: str = Input(description="Four comma-separated numbers", default="1,2,3,4")
    ) -> list[float]:
        numbers = [float(part) for part in values.split(",")]
        if len(numbers) != self.model.in_features:
            raise ValueError(f"expected {self.model.in_features} numbers, got {len(numbers)}")
        with torch.no_grad():
            output = torch.relu(self.model(torch.tensor([numbers], dtype=torch.float32)))
        return [float(v) for v in output[0]]
