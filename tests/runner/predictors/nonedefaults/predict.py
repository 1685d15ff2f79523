"""Every input type with ``Input(default=None)`` on a non-Optional annotation (the "seed" idiom)."""
# ruff: noqa: B008, RUF013 - the idiom under test

from cog import BasePredictor, File, Input, Path, Secret


class Predictor(BasePredictor):
    def predict(
        self,
        seed: int = Input(default=None),
        scale: float = Input(default=None),
        prompt: str = Input(default=None),
        flag: bool = Input(default=None),
        image: Path = Input(default=None),
        document: File = Input(default=None),
        numbers: list[int] = Input(default=None),
        words: list[str] = Input(default=None),
        images: list[Path] = Input(default=None),
        token: Secret = Input(default=None),
        plain: int = None,
    ) -> dict:
        return {
            "seed": seed,
            "scale": scale,
            "prompt": prompt,
            "flag": flag,
            "image": image.read_text() if image is not None else None,
            "document": document.read().decode() if document is not None else None,
            "numbers": numbers,
            "words": words,
            "images": [path.read_text() for path in images] if images is not None else None,
            "token": token.get_secret_value() if token is not None else None,
            "plain": plain,
        }
