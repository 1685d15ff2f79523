"""A top-level ``-> File`` returning the file objects models really return."""

import io
import tempfile

from cog import BasePredictor, File, Input


class Predictor(BasePredictor):
    def predict(
        self, kind: str = Input(default="bytesio", choices=["bytesio", "opened", "named", "spooled", "text"])
    ) -> File:
        if kind == "bytesio":
            buffer = io.BytesIO()
            buffer.write(b"line one\nline two\n")  # left at the end: the runner must rewind
            return buffer
        if kind == "text":
            return io.StringIO("text one\ntext two\n")
        if kind == "spooled":
            spooled = tempfile.SpooledTemporaryFile()  # noqa: SIM115 - returned open
            spooled.write(b"spooled\nbytes\n")
            return spooled
        with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as out:
            out.write(b"named\nfile\n")
        if kind == "opened":
            return open(out.name, "rb")
        named = tempfile.NamedTemporaryFile(suffix=".txt")  # noqa: SIM115 - a wrapper, not an io.IOBase
        named.write(b"named\nfile\n")
        named.flush()
        return named
