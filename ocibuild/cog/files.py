"""Where a project's cog.yaml is: kept apart from the config loader so that finding it loads nothing heavy."""

from __future__ import annotations

from pathlib import Path

from ocibuild.errors import UserInputError

OUTPUT_DIRNAME = ".ocibuild"
"""Where builds write by default, beside cog.yaml; never part of the image."""


def find_cog_yaml(path: Path) -> Path:
    """``path`` itself when it is a file, else ``path/cog.yaml``; one-line errors otherwise."""
    path = Path(path)
    if path.is_dir():
        path = path / "cog.yaml"
    if not path.exists():
        raise UserInputError(f"{path}: no such file (expected a cog.yaml or a directory holding one)")
    if not path.is_file():
        raise UserInputError(f"{path}: not a regular file")
    return path
