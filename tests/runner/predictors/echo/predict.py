"""The matrix predictor: many input types, logs, metrics, file output, failure and slow modes."""

import sys
import time

from cog import BasePredictor, Input, Path, Secret


class Predictor(BasePredictor):
    def setup(self) -> None:
        print("setup done")

    def predict(
        self,
        prompt: str = Input(description="Required text", max_length=20),
        n: int = Input(default=1, ge=1, le=10),
        mode: str = Input(default="plain", choices=["plain", "file", "slow", "fail", "logs"]),
        scale: float = Input(default=1.0, ge=0.0, le=100.0),
        flag: bool = Input(default=False),
        code: str = Input(default="ab", regex="^[a-z]+$", min_length=2),
        items: list[int] | None = Input(default=None),  # noqa: B008
        note: str | None = Input(default=None),
        token: Secret = Input(default=None),  # noqa: B008
        image: Path | None = Input(default=None),  # noqa: B008
    ) -> str:
        print(f"running {mode}")
        print("to stderr", file=sys.stderr)
        self.record_metric("token_count", n)
        if mode == "fail":
            raise ValueError("boom")
        if mode == "slow":
            time.sleep(scale)
        if mode == "logs":
            for i in range(n):
                print(f"line {i}")
                time.sleep(scale)
        if mode == "file":
            out = Path("/tmp") / f"echo-{prompt}.txt"
            out.write_text(prompt * n)
            return out
        parts = [prompt * n, str(scale), str(flag), code, repr(items), repr(note)]
        if token is not None:
            parts.append(token.get_secret_value())
        if image is not None:
            parts.append(image.read_text())
        return "|".join(parts)
