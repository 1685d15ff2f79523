"""Where ocibuild's data lives: ``layers/`` and ``base-images/`` in a checkout, or bundled in the wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The ``layers`` or ``base-images`` directory."""
    for candidate in (_PACKAGE.parent / name, _PACKAGE / "_data" / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"ocibuild data directory {name!r} is missing from this installation")
