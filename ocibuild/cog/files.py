"""Where a project's cog.yaml is: kept apart from the config loader so that finding it loads nothing heavy."""

from __future__ import annotations

import re
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
    if path.suffix not in (".yaml", ".yml"):
        raise UserInputError(f"{path}: not a cog.yaml; give the project directory or its cog.yaml")
    return path


def default_image_name(cog_yaml: Path, image: str | None) -> str:
    """The name a tarball's image loads as without ``-t``: cog.yaml's ``image:``, else the project folder's name."""
    if image:
        return image
    name = re.sub(r"[^a-z0-9._-]+", "-", cog_yaml.resolve().parent.name.lower()).strip("-._")
    return name or "ocibuild-image"
