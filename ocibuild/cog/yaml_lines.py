"""Load YAML into plain Python values while remembering where each value and key sits in the file."""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

FieldPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Position:
    """A 1-based line and column in the source file."""

    line: int
    column: int


@dataclass
class Marks:
    """Where each field path starts: its value, and (for mapping entries) its key."""

    values: dict[FieldPath, Position] = field(default_factory=dict)
    keys: dict[FieldPath, Position] = field(default_factory=dict)

    def value(self, path: FieldPath) -> Position:
        """The value at `path`, or the nearest enclosing field that exists."""
        return self._nearest(path, self.values)

    def key(self, path: FieldPath) -> Position:
        """The key of `path` (falling back to its value, then to its parents)."""
        if path in self.keys:
            return self.keys[path]
        return self._nearest(path, self.values)

    @staticmethod
    def _nearest(path: FieldPath, table: dict[FieldPath, Position]) -> Position:
        for end in range(len(path), -1, -1):
            if path[:end] in table:
                return table[path[:end]]
        return Position(1, 1)


class YamlSyntaxError(Exception):
    """The text is not YAML; carries a position and a one-line reason."""

    def __init__(self, position: Position, reason: str) -> None:
        super().__init__(reason)
        self.position = position
        self.reason = reason


def _position(mark: yaml.Mark | None) -> Position:
    if mark is None:
        return Position(1, 1)
    return Position(mark.line + 1, mark.column + 1)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def load_with_marks(text: str) -> tuple[object, Marks]:
    """Parse one YAML document; return its value (None when empty) and the marks of every field path."""
    loader = None
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None, Marks()
        value = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlSyntaxError(_position(mark), _one_line(exc.problem or exc.context or "invalid YAML")) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(Position(1, 1), _one_line(str(exc))) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise YamlSyntaxError(Position(1, 1), _one_line(f"cannot read value: {exc}")) from None
    finally:
        if loader is not None:
            loader.dispose()
    marks = Marks()
    _walk(node, (), marks)
    return value, marks


def raw_scalars(text: str, paths: set[FieldPath]) -> dict[FieldPath, str]:
    """The literal text of plain scalars at `paths` (so `python_version: 3.10` reads as "3.10", not 3.1)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    found: dict[FieldPath, str] = {}
    _collect_raw(node, (), paths, found)
    return found


def _key_of(node: yaml.Node) -> str | None:
    if isinstance(node, yaml.ScalarNode):
        return str(node.value)
    return None


def _walk(node: yaml.Node, path: FieldPath, marks: Marks, depth: int = 0) -> None:
    marks.values.setdefault(path, _position(node.start_mark))
    if depth > 50:
        return
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = _key_of(key_node)
            if key is None:
                continue
            marks.keys[(*path, key)] = _position(key_node.start_mark)
            _walk(value_node, (*path, key), marks, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), marks, depth + 1)


def _collect_raw(node: yaml.Node | None, path: FieldPath, wanted: set[FieldPath], found: dict[FieldPath, str]) -> None:
    if node is None:
        return
    if path in wanted and isinstance(node, yaml.ScalarNode) and node.style is None:
        found[path] = str(node.value)
    if isinstance(node, yaml.MappingNode) and any(w[: len(path)] == path for w in wanted if len(w) > len(path)):
        for key_node, value_node in node.value:
            key = _key_of(key_node)
            if key is not None:
                _collect_raw(value_node, (*path, key), wanted, found)
