"""``ocibuild.lock``: one JSON file beside cog.yaml pinning everything a build fetches.

Sections: ``debian`` (system_packages closure), ``python`` (every distribution: version, file, URL, sha256) and
``weights`` (URLs and Hub revisions). Each source module owns its section's content; this module only reads and
writes the file, canonically (sorted keys, two-space indent) and atomically.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocibuild.errors import UserInputError

LOCK_NAME = "ocibuild.lock"
LOCK_VERSION = 1


@dataclass
class ProjectLock:
    """The sections of a project lock; a missing section is ``None``."""

    debian: dict[str, Any] | None = None
    python: dict[str, Any] | None = None
    weights: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        doc: dict[str, Any] = {"version": LOCK_VERSION}
        for name in ("debian", "python", "weights"):
            value = getattr(self, name)
            if value is not None:
                doc[name] = value
        return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def lock_path(project_dir: Path) -> Path:
    return Path(project_dir) / LOCK_NAME


def read_project_lock(project_dir: Path) -> ProjectLock | None:
    """The project's lock, or None when there is none; a damaged lock is a one-line error."""
    path = lock_path(project_dir)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserInputError(f"{LOCK_NAME}: not valid JSON ({exc}); delete it and run 'ocibuild lock'") from None
    if not isinstance(doc, dict) or doc.get("version") != LOCK_VERSION:
        raise UserInputError(f"{LOCK_NAME}: unsupported lock version; run 'ocibuild lock' to refresh it")
    return ProjectLock(doc.get("debian"), doc.get("python"), doc.get("weights"))


def write_project_lock(project_dir: Path, lock: ProjectLock) -> Path:
    """Write the lock atomically (temp file + rename); unchanged content leaves the file untouched."""
    path = lock_path(project_dir)
    text = lock.to_json()
    try:
        if path.read_text(encoding="utf-8") == text:
            return path
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    temp = path.with_name(f".{LOCK_NAME}.{os.getpid()}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)
    return path
