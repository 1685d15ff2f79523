"""Registry transport: push images and indexes (exact manifest bytes, streamed and parallel blobs, mounts,
bounded retries with resume) and pull them into OCI layouts; auth from env vars and docker's config.json.

Only ``ocibuild.oci`` and ``ocibuild.errors`` are imported from the rest of ocibuild.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "Credentials": "credentials",
    "format_refs": "output",
    "write_digest_file": "output",
    "write_image_refs": "output",
    "PlainProgress": "progress",
    "Progress": "progress",
    "Recorder": "progress",
    "RichProgress": "progress",
    "default_progress": "progress",
    "pull": "pull",
    "push": "push",
    "Reference": "reference",
    "parse_reference": "reference",
}


def __getattr__(name: str) -> Any:
    """Import on first use: a build that pushes nothing never loads oras, requests or rich."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)


__all__ = [
    "Credentials",
    "PlainProgress",
    "Progress",
    "Recorder",
    "Reference",
    "RichProgress",
    "default_progress",
    "format_refs",
    "parse_reference",
    "pull",
    "push",
    "write_digest_file",
    "write_image_refs",
]
