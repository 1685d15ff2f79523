"""Registry transport: push images and indexes (exact manifest bytes, streamed and parallel blobs, mounts,
bounded retries with resume) and pull them into OCI layouts; auth from env vars, the containers auth files and
docker's config.json. See docs/registry.md.

Only ``ocibuild.oci``, ``ocibuild.errors``, ``ocibuild.progress`` and ``ocibuild.lazy`` are imported from the
rest. Names load on first use, so that a submodule (a reference parser, say) can be used without oras and requests.
"""

from __future__ import annotations

from ocibuild.lazy import lazy_getattr

_HOMES = {
    "Credentials": "credentials",
    "PlainProgress": "progress",
    "Progress": "progress",
    "Recorder": "progress",
    "RichProgress": "progress",
    "default_progress": "progress",
    "pull": "pull_image",
    "push": "push_image",
    "Reference": "reference",
    "parse_reference": "reference",
}

__all__ = sorted(_HOMES)

__getattr__ = lazy_getattr(__name__, _HOMES)
