"""Registry transport: push images and indexes (exact manifest bytes, streamed and parallel blobs, mounts,
bounded retries with resume) and pull them into OCI layouts; auth from env vars and docker's config.json.

Only ``ocibuild.oci`` and ``ocibuild.errors`` are imported from the rest of ocibuild.
"""

from ocibuild.registry.credentials import Credentials
from ocibuild.registry.progress import PlainProgress, Progress, Recorder, RichProgress, default_progress
from ocibuild.registry.pull import pull
from ocibuild.registry.push import push
from ocibuild.registry.reference import Reference, parse_reference

__all__ = [
    "Credentials",
    "PlainProgress",
    "Progress",
    "Recorder",
    "Reference",
    "RichProgress",
    "default_progress",
    "parse_reference",
    "pull",
    "push",
]
