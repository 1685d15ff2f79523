"""``ocibuild.lock``: one JSON file beside cog.yaml pinning everything a build fetches, per platform.

Sections: ``base`` (the Debian base: signed archive snapshots, every .deb with its sha256, the interpreter),
``debian`` (the system_packages closure), ``toolbox`` (what build.run commands get besides the image: curl,
wget, git, pip), ``python`` (every distribution: version, file, URL, sha256),
``weights`` (URLs and Hub revisions) and ``recipes`` (the versions of the recipes that shape layer bytes).
Each source module owns its section's content; this module reads and writes the file, canonically (sorted keys,
two-space indent) and atomically, and says what differs between two locks (``--locked`` and the build log).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocibuild.errors import UserInputError
from ocibuild.oci.atomic import write_atomic

LOCK_NAME = "ocibuild.lock"
LOCK_VERSION = 2
SECTIONS = ("base", "debian", "toolbox", "python", "weights", "recipes")
MAX_LOCK_BYTES = 64 * 1024 * 1024


@dataclass
class ProjectLock:
    """The sections of a project lock; a missing section is ``None``."""

    base: dict[str, Any] | None = None
    debian: dict[str, Any] | None = None
    toolbox: dict[str, Any] | None = None
    python: dict[str, Any] | None = None
    weights: dict[str, Any] | None = None
    recipes: dict[str, str] | None = None
    upgraded_from: int | None = field(default=None, compare=False)
    """The lock version read from disk when it was older than this one."""

    def to_json(self) -> str:
        doc: dict[str, Any] = {"version": LOCK_VERSION}
        for name in SECTIONS:
            value = getattr(self, name)
            if value is not None:
                doc[name] = value
        return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n"

    def sections(self) -> dict[str, Any]:
        """Every present section, by name (JSON values, as the file holds them)."""
        return json.loads(self.to_json())


def lock_path(project_dir: Path) -> Path:
    return Path(project_dir) / LOCK_NAME


def read_project_lock(project_dir: Path) -> ProjectLock | None:
    """The project's lock, or None when there is none; a damaged lock is a one-line error.

    A version-1 lock (no ``base``/``recipes``) is read as is; the next resolution adds what it lacks.
    """
    path = lock_path(project_dir)
    try:
        if path.stat().st_size > MAX_LOCK_BYTES:
            raise UserInputError(f"{LOCK_NAME}: larger than {MAX_LOCK_BYTES >> 20} MiB; not a lock ocibuild wrote")
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserInputError(f"{LOCK_NAME}: not valid JSON ({exc}); delete it and run 'ocibuild lock'") from None
    if not isinstance(doc, dict) or doc.get("version") not in (1, LOCK_VERSION):
        raise UserInputError(f"{LOCK_NAME}: unsupported lock version; run 'ocibuild lock' to refresh it")
    for name in SECTIONS:
        if name in doc and not isinstance(doc[name], dict):
            raise UserInputError(f"{LOCK_NAME}: section {name!r} is not an object; run 'ocibuild lock'")
    lock = ProjectLock(**{name: doc.get(name) for name in SECTIONS})
    if doc["version"] != LOCK_VERSION:
        lock.upgraded_from = doc["version"]
    return lock


def write_project_lock(project_dir: Path, lock: ProjectLock) -> Path:
    """Write the lock atomically (temp file + rename); unchanged content leaves the file untouched."""
    path = lock_path(project_dir)
    text = lock.to_json()
    try:
        if path.read_text(encoding="utf-8") == text:
            return path
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    write_atomic(path, text.encode())
    return path


def lock_changes(old: ProjectLock | None, new: ProjectLock) -> list[str]:
    """What writing ``new`` over ``old`` would change, one short phrase each (empty: nothing)."""
    if old is None:
        return [f"{LOCK_NAME} is missing"]
    changes = [f"lock version {old.upgraded_from} -> {LOCK_VERSION}"] if old.upgraded_from else []
    before, after = old.sections(), new.sections()
    for name in SECTIONS:
        a, b = before.get(name), after.get(name)
        if a == b:
            continue
        if a is None:
            changes.append(f"{name}: added")
        elif b is None:
            changes.append(f"{name}: removed")
        else:
            changes.append(f"{name}: {_describe(name, a, b)}")
    return changes


def _describe(name: str, old: dict[str, Any], new: dict[str, Any]) -> str:
    """The keys that differ inside a section (platforms, recipes, ...), briefly."""
    if name == "recipes":
        return ", ".join(
            f"{k} {old.get(k)} -> {new.get(k)}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)
        )
    inner_old, inner_new = old.get("platforms", old), new.get("platforms", new)
    if not isinstance(inner_old, dict) or not isinstance(inner_new, dict):
        return "changed"
    added = sorted(set(inner_new) - set(inner_old))
    removed = sorted(set(inner_old) - set(inner_new))
    changed = sorted(k for k in set(inner_old) & set(inner_new) if inner_old[k] != inner_new[k])
    parts = [f"+{k}" for k in added] + [f"-{k}" for k in removed]
    parts += [f"~{k}{_distributions(inner_old[k], inner_new[k])}" for k in changed]
    return " ".join(parts) or "changed"


def _distributions(old: Any, new: Any) -> str:
    """`` (+a==1, b 1 -> 2, -c)`` for two Python sections; empty for anything else."""
    try:
        before = {d["name"]: d["version"] for d in old["distributions"]}
        after = {d["name"]: d["version"] for d in new["distributions"]}
    except (KeyError, TypeError):
        return ""
    parts = [f"+{n}=={after[n]}" for n in sorted(set(after) - set(before))]
    parts += [f"{n} {before[n]} -> {after[n]}" for n in sorted(set(before) & set(after)) if before[n] != after[n]]
    parts += [f"-{n}" for n in sorted(set(before) - set(after))]
    return f" ({', '.join(parts)})" if parts else ""
