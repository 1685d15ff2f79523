"""Canonical JSON bytes: sorted keys, compact separators, UTF-8. The bytes hashed are the bytes written."""

from __future__ import annotations

import json
from typing import Any


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def rfc3339(epoch: int) -> str:
    """``1970-01-01T00:00:00Z`` style timestamps, as OCI's ``created`` fields want."""
    import datetime

    return datetime.datetime.fromtimestamp(int(epoch), tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
