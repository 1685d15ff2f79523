"""Files in, files out: returns the uploaded file under a name that says its type (for the playground's preview)."""

import shutil
import tempfile

from cog import BasePredictor, Input, Path


class Predictor(BasePredictor):
    def predict(
        self,
        image: Path = Input(description="Any file; it comes back as out.<ext>"),  # noqa: B008
        ext: str = Input(default="png", choices=["png", "wav", "json", "txt"]),
        more: list[Path] | None = Input(default=None, description="Files appended to the first"),  # noqa: B008
    ) -> Path:
        out = Path(tempfile.mkdtemp()) / f"out.{ext}"
        shutil.copyfile(image, out)
        with open(out, "ab") as sink:
            for extra in more or []:
                sink.write(extra.read_bytes())
        return out
