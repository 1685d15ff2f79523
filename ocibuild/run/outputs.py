"""What ``ocibuild predict`` does with a prediction's output: file outputs (``data:`` URLs) written with their
extensions, other values printed as ``cog predict`` prints them, streamed chunks printed as they arrive."""

from __future__ import annotations

import base64
import binascii
import json
import mimetypes
from pathlib import Path
from typing import Any

from ocibuild.errors import BuildError, UserInputError


def _decode_data_url(url: str) -> tuple[bytes, str]:
    header, _, payload = url.partition(",")
    mime = header[5:].split(";")[0] or "application/octet-stream"
    try:
        data = base64.b64decode(payload) if ";base64" in header else payload.encode()
    except binascii.Error:
        raise BuildError("the model returned a malformed data: URL") from None
    return data, mime


def _is_file(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("data:")


def check_output_path(path: Path | None) -> None:
    """Refuse an ``-o`` that cannot be written before any container starts (as ``cog predict`` does)."""
    if path is None:
        return
    if path.is_dir():
        raise UserInputError(f"-o {path}: is a directory; give a file path")
    if not path.parent.is_dir():
        raise UserInputError(f"-o {path}: the folder {path.parent} does not exist")


def write_output(output: Any, path: Path | None, schema: dict[str, Any] | None) -> tuple[str | None, list[Path]]:
    """Write file outputs (``output.<ext>``, ``output.<i>.<ext>`` or ``-o PATH``, ``PATH.<i>.<ext>`` for a list);
    returns the text to print."""
    values = output if isinstance(output, list) and output and all(_is_file(v) for v in output) else None
    if _is_file(output) or values is not None:
        files = []
        for index, url in enumerate(values if values is not None else [output]):
            data, mime = _decode_data_url(url)
            ext = _extension(mime)
            if path is None:
                target = Path(f"output.{index}{ext}" if values is not None else f"output{ext}")
            elif values is not None:
                target = path.with_name(f"{path.stem if path.suffix else path.name}.{index}{path.suffix or ext}")
            else:
                target = path
            target.write_bytes(data)
            files.append(target)
        return None, files
    text = output_text(output, schema)
    if path is not None:
        path.write_text(text if text.endswith("\n") else text + "\n")
        return None, [path]
    return text, []


def _extension(mime: str) -> str:
    """``.png`` for ``image/png``; the common types first, as Python's table prefers rarer ones (``.jpe``)."""
    preferred = {"image/jpeg": ".jpg", "audio/mpeg": ".mp3", "text/plain": ".txt", "video/mp4": ".mp4"}
    return preferred.get(mime) or mimetypes.guess_extension(mime) or ""


def output_text(output: Any, schema: dict[str, Any] | None) -> str:
    """A non-file output as ``cog predict`` prints it: strings plain, concatenated iterators joined, else JSON."""
    output_schema = ((schema or {}).get("components", {}).get("schemas", {}) or {}).get("Output", {})
    if isinstance(output, str):
        return output
    if isinstance(output, list) and output_schema.get("x-cog-array-display") == "concatenate":
        return "".join(str(item) for item in output)
    return json.dumps(output, indent=2)


def is_streaming(schema: dict[str, Any] | None) -> bool:
    """The schema's ``x-cog-streaming``: the runner then answers ``Accept: text/event-stream``."""
    create = ((schema or {}).get("paths", {}).get("/predictions") or {}).get("post") or {}
    return bool(isinstance(create, dict) and create.get("x-cog-streaming"))


class ChunkPrinter:
    """Prints each streamed output chunk as it arrives (files are written once the prediction completes)."""

    def __init__(self, schema: dict[str, Any] | None) -> None:
        output_schema = ((schema or {}).get("components", {}).get("schemas", {}) or {}).get("Output", {})
        self.joined = output_schema.get("x-cog-array-display") == "concatenate"
        self.printed = 0

    def __call__(self, chunk: Any) -> None:
        if _is_file(chunk):
            return
        text = chunk if isinstance(chunk, str) else json.dumps(chunk)
        print(text, end="" if self.joined else "\n", flush=True)
        self.printed += 1

    def finish(self) -> None:
        if self.joined and self.printed:
            print(flush=True)
