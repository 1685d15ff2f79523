# ruff: noqa
from cog import BasePredictor, File, Input, Path, Secret


class Predictor(BasePredictor):
    def predict(
        self,
        image: Path = Input(description="Input image"),
        mask: File = Input(default=None),
        token: Secret = Input(default=None, description="API token"),
        password: Secret = Input(),
    ) -> Path:
        return image
