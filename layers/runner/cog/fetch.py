"""Reading inputs from ``data:`` URIs and http(s) URLs with the standard library."""

from __future__ import annotations

import base64
import os
import pathlib
import shutil
import urllib.parse
import urllib.request
from typing import IO, Any

DOWNLOAD_TIMEOUT_S = 60.0
CHUNK_BYTES = 1 << 20


def is_remote(value: str) -> bool:
    """True for strings the runner downloads: ``data:``, ``http://`` and ``https://``."""
    return value.startswith(("data:", "http://", "https://"))


def filename_for(source: str) -> str:
    """A file name for a download: the URL's last path segment, or ``file.<ext>`` for a data URI."""
    if source.startswith("data:"):
        import mimetypes

        mime = source[5:].split(",", 1)[0].split(";", 1)[0]
        return "file" + (mimetypes.guess_extension(mime) or "")
    name = os.path.basename(urllib.parse.unquote(urllib.parse.urlparse(source).path))
    return name[:200] or "file"


def decode_data_uri(uri: str) -> tuple[bytes, str]:
    """Decode ``data:[<mime>][;base64],<payload>`` into (bytes, mime)."""
    header, _, payload = uri[5:].partition(",")
    parts = header.split(";")
    mime = parts[0] or "text/plain"
    if "base64" in parts[1:]:
        return base64.b64decode(payload), mime
    return urllib.parse.unquote_to_bytes(payload), mime


def open_url(url: str) -> IO[bytes]:
    """Open an http(s) URL for streaming reads (honours ``COG_USER_AGENT``)."""
    headers = {"User-Agent": os.environ.get("COG_USER_AGENT", "cog-runner")}
    request = urllib.request.Request(url, headers=headers)
    return urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S)


def download(source: str, target: pathlib.Path) -> None:
    """Write the bytes of a data URI or http(s) URL to ``target``."""
    if source.startswith("data:"):
        target.write_bytes(decode_data_uri(source)[0])
        return
    with open_url(source) as response, open(target, "wb") as out:
        shutil.copyfileobj(response, out, CHUNK_BYTES)


def read_all(source: Any) -> bytes:
    """All bytes of a path, or of a readable file object from its start (rewound when seekable)."""
    if hasattr(source, "read"):
        seekable = getattr(source, "seekable", None)
        if callable(seekable) and seekable():
            source.seek(0)
        data = source.read()
        return data.encode() if isinstance(data, str) else data
    return pathlib.Path(source).read_bytes()
