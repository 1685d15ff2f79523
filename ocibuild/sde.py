"""SOURCE_DATE_EPOCH: the one timestamp every build output carries."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ocibuild import progress
from ocibuild.errors import UserInputError


def resolve_source_date_epoch(explicit: int | None, project_dir: Path) -> int:
    """``--source-date-epoch``, else ``$SOURCE_DATE_EPOCH``, else the last git commit time, else 0."""
    if explicit is not None:
        return _checked(explicit, "--source-date-epoch")
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        try:
            return _checked(int(env), "SOURCE_DATE_EPOCH")
        except ValueError:
            raise UserInputError(f"SOURCE_DATE_EPOCH: not an integer: {env!r}") from None
    return git_commit_time(project_dir) or 0


def git_commit_time(project_dir: Path) -> int | None:
    """The committer time of HEAD when ``project_dir`` is inside a git work tree."""
    try:
        out = subprocess.run(
            ["git", "-C", str(project_dir), "log", "-1", "--format=%ct"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    text = out.stdout.strip()
    if out.returncode != 0 and "safe.directory" in out.stderr:
        progress.active().warn(
            f"git refuses {project_dir} (owned by another user), so SOURCE_DATE_EPOCH falls back to 0; "
            "set SOURCE_DATE_EPOCH or add the repository to git's safe.directory"
        )
    return int(text) if out.returncode == 0 and text.isdigit() else None


def _checked(value: int, name: str) -> int:
    if value < 0 or value > 253402300799:
        raise UserInputError(f"{name}: out of range: {value}")
    return value
