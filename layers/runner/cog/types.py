"""Cog's input/output types: ``Path``, ``File``, ``URLFile``, ``URLPath``, ``Secret`` and the iterator markers."""

from __future__ import annotations

import io
import os
import pathlib
import tempfile
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from cog import fetch

Item = TypeVar("Item")


class Path(pathlib.PosixPath):
    """A file path; as an input it accepts ``data:`` URIs and http(s) URLs, as an output it is uploaded/encoded."""

    @classmethod
    def validate(cls, value: Any) -> pathlib.Path:
        """Turn an input value (path, URL or data URI) into a local path, downloading when needed."""
        if isinstance(value, pathlib.Path):
            return value
        if isinstance(value, str) and fetch.is_remote(value):
            return URLPath(source=value).convert()
        return cls(value)


class URLPath(pathlib.PosixPath):
    """A ``Path`` to a URL, downloaded to a temporary file on ``convert()``."""

    def __new__(cls, *, source: str, filename: str | None = None) -> URLPath:
        return super().__new__(cls, filename or fetch.filename_for(source))

    def __init__(self, *, source: str, filename: str | None = None) -> None:
        name = filename or fetch.filename_for(source)
        if _PATH_INIT_TAKES_ARGS:
            super().__init__(name)
        self.source = source

    def convert(self) -> Path:
        """Download (or decode) the source into a fresh temporary directory and return its path."""
        target = Path(tempfile.mkdtemp(prefix="cog-input-")) / self.name
        fetch.download(self.source, target)
        return target


_PATH_INIT_TAKES_ARGS = pathlib.PurePath.__init__ is not object.__init__


class File(io.IOBase):
    """Deprecated file-like input; ``File.validate`` opens a data URI, URL or local path for reading."""

    @classmethod
    def validate(cls, value: Any) -> io.IOBase:
        """Return a readable binary file object for ``value``."""
        if isinstance(value, io.IOBase):
            return value
        scheme = urllib.parse.urlparse(str(value)).scheme
        if scheme == "data":
            return io.BytesIO(fetch.decode_data_uri(value)[0])
        if scheme in ("http", "https"):
            return URLFile(value)
        raise ValueError(f"'{scheme}' is not a valid URL scheme. 'data', 'http', or 'https' is supported.")


class URLFile(io.RawIOBase):
    """A read-only binary file streamed lazily from an http(s) URL."""

    def __init__(self, url: str, filename: str | None = None) -> None:
        if urllib.parse.urlparse(url).scheme not in ("http", "https"):
            raise ValueError("URLFile requires URL to conform to HTTP or HTTPS protocol")
        super().__init__()
        self.url = url
        self.name = filename or os.path.basename(urllib.parse.urlparse(url).path)
        self._response: Any = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._response is None:
            self._response = fetch.open_url(self.url)
        return self._response.readinto(buffer)

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
        super().close()

    def __reduce__(self) -> tuple[Any, ...]:
        return (URLFile, (self.url, self.name))

    def __repr__(self) -> str:
        return f"<URLFile {self.url!r}>"


@dataclass(frozen=True)
class Secret:
    """A string that hides itself in ``str``/``repr``; read it with ``get_secret_value()``."""

    secret_value: str | None = None

    def __repr__(self) -> str:
        return f"Secret({self})"

    def __str__(self) -> str:
        return "**********" if self.secret_value is not None else ""

    def get_secret_value(self) -> str | None:
        return self.secret_value


class ConcatenateIterator(Iterator[Item]):
    """Return annotation for generators whose string chunks should be shown concatenated."""

    def __next__(self) -> Item:
        raise StopIteration


class AsyncConcatenateIterator(AsyncIterator[Item]):
    """Async variant of ``ConcatenateIterator``."""

    async def __anext__(self) -> Item:
        raise StopAsyncIteration
