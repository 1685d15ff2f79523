"""``cog.coder.Coder``: user-registered encoders/decoders for custom types (Cog SDK API).

Cog's runtime keeps the registry but does not consult it when it serves a model; neither does this runner.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar


class Coder:
    """Subclass with ``factory(tpe)``, ``encode(value)`` and ``decode(data)``; add with ``Coder.register``."""

    _coders: ClassVar[set[type[Coder]]] = set()

    @staticmethod
    def register(coder: type[Coder]) -> None:
        """Make ``coder`` available to ``lookup``."""
        Coder._coders.add(coder)

    @staticmethod
    def lookup(tpe: Any) -> Coder | None:
        """A coder instance for ``tpe`` from the first registered class whose ``factory`` accepts it."""
        for coder in Coder._coders:
            found = coder.factory(tpe)
            if found is not None:
                return found
        return None

    @staticmethod
    @abstractmethod
    def factory(tpe: type[Any]) -> Coder | None:
        """A coder for ``tpe``, or ``None`` when this class does not handle it."""

    @abstractmethod
    def encode(self, x: Any) -> dict[str, Any]:
        """``x`` as a JSON-ready dictionary."""

    @abstractmethod
    def decode(self, x: dict[str, Any]) -> Any:
        """The value ``encode`` made ``x`` from."""
