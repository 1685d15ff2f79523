"""Image in, image out: invert the colours of an image and optionally scale it, with Pillow."""

import tempfile

from PIL import Image, ImageOps

from cog import BasePredictor, Input, Path


class Predictor(BasePredictor):
    def predict(
        self,
        image: Path = Input(description="The image to invert"),  # noqa: B008 - Cog declares inputs this way
        scale: float = Input(description="Resize factor applied after inverting", default=1.0, ge=0.1, le=4.0),
    ) -> Path:
        with Image.open(image) as source:
            inverted = ImageOps.invert(source.convert("RGB"))
        if scale != 1.0:
            size = (max(1, round(inverted.width * scale)), max(1, round(inverted.height * scale)))
            inverted = inverted.resize(size, Image.Resampling.NEAREST)
        out = Path(tempfile.mkdtemp()) / "inverted.png"
        inverted.save(out, format="PNG")
        return out
