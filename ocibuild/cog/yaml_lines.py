"""Load YAML into plain Python values while remembering where each value and key sits in the file.

The text is untrusted, so loading is bounded: nesting depth, alias count, and the number of values the document
expands to once every alias is followed (a "billion laughs" bomb is about 1 KB) are capped before anything is
constructed, and every walk visits each node once. Duplicate keys in a mapping are rejected as Cog's loader
(go.yaml.in/yaml/v4, unique keys on by default) rejects them: "mapping key "x" already defined at line N".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

FieldPath = tuple[str | int, ...]

MAX_DEPTH = 64
MAX_ALIASES = 1_000
MAX_EXPANDED_NODES = 100_000


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


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a cap on nesting depth and on the number of aliases while composing."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:
        """Compose one node, refusing documents nested or aliased beyond the caps."""
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise YamlSyntaxError(_position(self.peek_event().start_mark), f"more than {MAX_ALIASES} aliases")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlSyntaxError(_position(mark), f"nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _compose(text: str) -> tuple[_BoundedLoader, yaml.Node | None]:
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_graph(node)
    except BaseException:
        loader.dispose()
        raise
    return loader, node


def load_with_marks(text: str) -> tuple[object, Marks]:
    """Parse one YAML document; return its value (None when empty) and the marks of every field path."""
    loader = None
    try:
        loader, node = _compose(text)
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
    _walk(node, (), marks, set())
    return value, marks


def raw_scalars(text: str, paths: set[FieldPath]) -> dict[FieldPath, str]:
    """The literal text of plain scalars at `paths` (so `python_version: 3.10` reads as "3.10", not 3.1).

    Call it only on text that `load_with_marks` accepted.
    """
    loader, node = _compose(text)
    loader.dispose()
    found: dict[FieldPath, str] = {}
    _collect_raw(node, (), paths, found)
    return found


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_graph(root: yaml.Node) -> None:
    """Refuse self-containing anchors, documents that expand past the cap, and duplicate keys (each node once)."""
    expanded: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        if finished:
            open_nodes.discard(id(node))
            size = 1 + sum(expanded[id(child)] for child in _children(node))
            if size > MAX_EXPANDED_NODES:
                reason = f"aliases expand this value to more than {MAX_EXPANDED_NODES} values"
                raise YamlSyntaxError(_position(node.start_mark), reason)
            expanded[id(node)] = size
        elif id(node) in open_nodes:
            raise YamlSyntaxError(_position(node.start_mark), "an alias refers to a value that contains it")
        elif id(node) not in expanded:
            _check_unique_keys(node)
            open_nodes.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node))


def _check_unique_keys(node: yaml.Node) -> None:
    if not isinstance(node, yaml.MappingNode):
        return
    seen: dict[str, yaml.Node] = {}
    for key_node, _ in node.value:
        key = _key_of(key_node)
        if key is None:
            continue
        if key in seen:
            line = seen[key].start_mark.line + 1
            raise YamlSyntaxError(_position(key_node.start_mark), f"mapping key {key!r} already defined at line {line}")
        seen[key] = key_node


def _key_of(node: yaml.Node) -> str | None:
    if isinstance(node, yaml.ScalarNode):
        return str(node.value)
    return None


def _walk(node: yaml.Node, path: FieldPath, marks: Marks, seen: set[int]) -> None:
    """Record where each field path starts, descending into each node once (an alias reuses its anchor's marks)."""
    marks.values.setdefault(path, _position(node.start_mark))
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = _key_of(key_node)
            if key is None:
                continue
            marks.keys[(*path, key)] = _position(key_node.start_mark)
            _walk(value_node, (*path, key), marks, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), marks, seen)


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
