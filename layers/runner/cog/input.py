"""``Input()``: per-parameter metadata read by the schema generator and the runner."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_UNSET: Any = object()


@dataclass(frozen=True)
class FieldInfo:
    """Metadata of one predictor input; ``default`` is what the runner passes when the input is omitted."""

    default: Any = None
    description: str | None = None
    ge: float | None = None
    le: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    regex: str | None = None
    choices: list[str | int] | None = None
    deprecated: bool | None = None
    accept: str | None = None
    default_given: bool = field(default=True, repr=False)
    """False for ``Input(description=...)``: the input has no default, not a default of ``None``."""


def Input(
    default: Any = _UNSET,
    *,
    default_factory: Callable[..., Any] | None = None,
    description: str | None = None,
    ge: float | None = None,
    le: float | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    regex: str | None = None,
    choices: list[str | int] | None = None,
    deprecated: bool | None = None,
    accept: str | None = None,
) -> Any:
    """Describe a predictor input (constraints are enforced by the runner from the bundled schema)."""
    if default_factory is not None:
        raise TypeError("default_factory is not supported in Input(); use a literal default=... instead")
    given = default is not _UNSET
    constraints = (description, ge, le, min_length, max_length, regex, choices, deprecated, accept)
    return FieldInfo(default if given else None, *constraints, default_given=given)
