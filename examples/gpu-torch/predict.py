"""A GPU model: a matrix product on CUDA when there is a GPU (on the CPU otherwise), reporting where it ran."""

import torch

from cog import BaseModel, BasePredictor, Input


class Output(BaseModel):
    device: str
    cuda_available: bool
    trace: float
    torch_version: str


class Predictor(BasePredictor):
    def setup(self) -> None:
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"
        print(f"torch {torch.__version__} on {name}")

    def predict(self, size: int = Input(description="Matrix size", default=256, ge=1, le=8192)) -> Output:
        # (I * 2) @ (I * 3) = 6 I, whose trace is 6 * size, whatever the device.
        eye = torch.eye(size, device=self.device)
        product = (eye * 2) @ (eye * 3)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        device = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"
        return Output(
            device=device,
            cuda_available=torch.cuda.is_available(),
            trace=float(product.trace().item()),
            torch_version=torch.__version__,
        )
