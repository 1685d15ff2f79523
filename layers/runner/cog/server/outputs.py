"""Worker side: turn what a handler returns into JSON, encoding or uploading files."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import io
import mimetypes
import os
import pathlib
import sys
import urllib.parse
import urllib.request
from typing import Any

from cog import fetch
from cog.types import Secret

UPLOAD_TIMEOUT_S = 25.0


class FileEncoder:
    """Makes a file output into a ``data:`` URI, or PUTs it to ``upload_url`` and returns where it went."""

    def __init__(self, upload_url: str | None) -> None:
        self.upload_url = upload_url

    def __call__(self, source: Any) -> str:
        name = _file_name(source)
        mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
        data = fetch.read_all(source)
        if self.upload_url is None:
            return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        return self._upload(name, mime, data)

    def _upload(self, name: str, mime: str, data: bytes) -> str:
        url = self.upload_url + urllib.parse.quote(name)
        request = urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": mime})
        with urllib.request.urlopen(request, timeout=UPLOAD_TIMEOUT_S) as response:
            location = response.headers.get("Location") or response.geturl()
        return urllib.parse.urlunsplit(urllib.parse.urlsplit(location)._replace(query="", fragment=""))


def is_file_like(value: Any) -> bool:
    """An open file: any ``io.IOBase``, or a file wrapper with ``read()`` and ``name`` (``tempfile``'s)."""
    if isinstance(value, io.IOBase):
        return True
    return not isinstance(value, type) and callable(getattr(value, "read", None)) and hasattr(value, "name")


def _file_name(source: Any) -> str:
    """The base name to upload a path or file object under (``output`` when it has none)."""
    name = source if isinstance(source, pathlib.PurePath) else getattr(source, "name", None)
    return os.path.basename(str(name)) if isinstance(name, (str, pathlib.PurePath)) and str(name) else "output"


def to_json(value: Any, encode_file: FileEncoder) -> Any:
    """JSON-ready form of an output value (models, dataclasses, enums, dates, numpy, files, iterables)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, enum.Enum):
        return to_json(value.value, encode_file)
    if isinstance(value, Secret):  # before the dataclass branch: a Secret is a dataclass
        return value.get_secret_value()
    if isinstance(value, pathlib.PurePath) or is_file_like(value):
        return encode_file(value)
    if isinstance(value, dict):
        return {str(key): to_json(item, encode_file) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json(item, encode_file) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: to_json(getattr(value, field.name), encode_file) for field in dataclasses.fields(value)}
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    numpy_form = _numpy_to_python(value)
    if numpy_form is not value:
        return to_json(numpy_form, encode_file)
    if hasattr(value, "model_dump"):  # pydantic v2 models
        return to_json(value.model_dump(), encode_file)
    if hasattr(value, "__iter__"):
        return [to_json(item, encode_file) for item in value]
    return str(value)


def _numpy_to_python(value: Any) -> Any:
    """numpy scalars → Python scalars, arrays → nested lists; anything else unchanged (numpy is optional)."""
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return value
    if isinstance(value, numpy.ndarray):
        return value.tolist()
    if isinstance(value, numpy.generic):
        return value.item()
    return value
