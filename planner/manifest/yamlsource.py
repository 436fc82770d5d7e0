# types-PyYAML types Composer hooks loosely (anchors as dicts, events missing); the overrides follow pyyaml's code.
# mypy: disable-error-code="attr-defined,override,arg-type,return-value,misc"
"""Read YAML into plain data while keeping where every node came from.

pyyaml's loaders are wrong for a manifest in three ways: they keep the last
of two duplicate keys without a word, they construct whatever a tag asks for,
and an alias bomb ("billion laughs") loads in milliseconds only to hang
whatever walks the result later. This module composes the node graph itself
(libyaml's C parser for speed when present), counts the *expanded* size of
every node while composing so a bomb fails at once, rejects duplicate keys
and foreign tags, and converts nodes to plain ``dict``/``list``/scalars.

Positions are looked up lazily from the node tree (:class:`Source.locate`),
so a 10,000-flow manifest does not pay for a position table it never reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from planner.errors import Location, ManifestError, Problem

#: Largest input accepted; a manifest of 10,000 realistic flows is about 6 MiB.
MAX_BYTES = 32 * 1024 * 1024
#: Largest number of nodes after alias expansion (a 10,000-flow manifest has ~1.2 million).
MAX_EXPANDED_NODES = 5_000_000
#: Deepest nesting accepted; real manifests stay under 12.
MAX_DEPTH = 64

Path = tuple[str | int, ...]

_TAG = "tag:yaml.org,2002:"
_PLAIN_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp", "seq", "map", "merge")}


class _Abort(Exception):
    """Stops composing at once (alias bomb, nesting too deep)."""

    def __init__(self, message: str, mark: yaml.Mark | None) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


class _CountingComposer(Composer):
    """Composer that counts expanded size, rejects duplicate keys and bounds depth."""

    problems: list[tuple[str, yaml.Mark | None, Path]]

    def _init_counting(self) -> None:
        self.sizes: dict[int, int] = {}
        self.expanded = 0
        self.depth = 0
        self.problems = []

    def _grow(self, amount: int, mark: yaml.Mark | None) -> None:
        self.expanded += amount
        if self.expanded > MAX_EXPANDED_NODES:
            raise _Abort(
                f"the document expands to more than {MAX_EXPANDED_NODES:,} nodes through aliases "
                "(an alias bomb?); write the repeated parts out or use fewer nested aliases",
                mark,
            )

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(AliasEvent):
            event = self.peek_event()
            node = super().compose_node(parent, index)
            self._grow(self.sizes.get(id(node), 1), event.start_mark)
            return node
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Abort(f"nesting deeper than {MAX_DEPTH} levels", self.peek_event().start_mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        return node

    def compose_scalar_node(self, anchor: str | None) -> Node:
        node = super().compose_scalar_node(anchor)
        self.sizes[id(node)] = 1
        self._grow(1, node.start_mark)
        return node

    def compose_sequence_node(self, anchor: str | None) -> Node:
        node = super().compose_sequence_node(anchor)
        size = 1 + sum(self.sizes.get(id(child), 1) for child in node.value)
        self.sizes[id(node)] = size
        self._grow(1, node.start_mark)
        return node

    def compose_mapping_node(self, anchor: str | None) -> Node:
        node = super().compose_mapping_node(anchor)
        seen: dict[Any, yaml.Mark] = {}
        size = 1
        for key, value in node.value:
            size += self.sizes.get(id(key), 1) + self.sizes.get(id(value), 1)
            if not isinstance(key, ScalarNode):
                self.problems.append(("mapping keys must be plain strings", key.start_mark, ()))
                continue
            if key.tag == _TAG + "merge":
                continue
            if key.value in seen:
                first = seen[key.value]
                self.problems.append(
                    (
                        f"duplicate key {key.value!r} (first defined at line {first.line + 1}); "
                        "YAML would silently keep only the last one",
                        key.start_mark,
                        (),
                    )
                )
            else:
                seen[key.value] = key.start_mark
        self.sizes[id(node)] = size
        self._grow(1, node.start_mark)
        return node


def _loader_class() -> type:
    """Prefer libyaml's event parser; compose in Python so the checks above run."""
    try:
        from yaml import CParser  # type: ignore[attr-defined]

        base: type = CParser
    except ImportError:  # pragma: no cover - libyaml is in every wheel we ship against
        from yaml.parser import Parser
        from yaml.reader import Reader
        from yaml.scanner import Scanner

        class _PyParser(Reader, Scanner, Parser):  # type: ignore[misc]
            def __init__(self, stream: Any) -> None:
                Reader.__init__(self, stream)
                Scanner.__init__(self)
                Parser.__init__(self)

        base = _PyParser

    class _Loader(base, _CountingComposer, Resolver):  # type: ignore[misc,valid-type]
        def __init__(self, stream: Any) -> None:
            base.__init__(self, stream)
            Composer.__init__(self)
            Resolver.__init__(self)
            self._init_counting()

    return _Loader


_LOADER = _loader_class()
_SCALARS = SafeConstructor()


@dataclass
class Source:
    """A parsed YAML document: plain ``data`` plus the node tree for positions."""

    file: str
    data: Any
    root: Node | None
    _index: dict[int, dict[Any, tuple[Node, Node]]] = field(default_factory=dict, repr=False)

    def _mapping(self, node: MappingNode) -> dict[Any, tuple[Node, Node]]:
        index = self._index.get(id(node))
        if index is None:
            index = {}
            for key, value in _merged_items(node):
                index.setdefault(key.value, (key, value))
            self._index[id(node)] = index
        return index

    def _walk(self, path: Sequence[str | int]) -> tuple[Node | None, Node | None]:
        """The (key node, value node) at ``path``; the deepest existing ancestor if missing."""
        node = self.root
        key_node: Node | None = None
        for part in path:
            if isinstance(node, MappingNode):
                found = self._mapping(node).get(part)
                if found is None:
                    return key_node, node
                key_node, node = found
            elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                key_node, node = None, node.value[part]
            else:
                return key_node, node
        return key_node, node

    def locate(self, path: Sequence[str | int]) -> Location:
        """Position of the value at ``path`` (or of its nearest existing ancestor)."""
        _, node = self._walk(path)
        return self._loc(node)

    def locate_key(self, path: Sequence[str | int]) -> Location:
        """Position of the mapping key that ``path`` ends in (falls back to the value)."""
        key, node = self._walk(path)
        return self._loc(key or node)

    def _loc(self, node: Node | None) -> Location:
        if node is None:
            return Location(self.file, 1, 1)
        mark = node.start_mark
        return Location(self.file, mark.line + 1, mark.column + 1)


def _merged_items(node: MappingNode) -> Iterator[tuple[Node, Node]]:
    """Mapping items with YAML merge keys (``<<: *base``) expanded; explicit keys win."""
    merged: list[tuple[Node, Node]] = []
    for key, value in node.value:
        if key.tag == _TAG + "merge":
            sources = value.value if isinstance(value, SequenceNode) else [value]
            for src in sources:
                if isinstance(src, MappingNode):
                    merged.extend(_merged_items(src))
        else:
            yield key, value
    yield from merged


_ESCAPE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def parse_yaml(raw: bytes | str, file: str) -> Source:
    """Parse one YAML document into a :class:`Source`; every problem is a ``ManifestError``."""
    if isinstance(raw, bytes):
        if len(raw) > MAX_BYTES:
            raise ManifestError(
                Problem(
                    Location(file),
                    "",
                    f"the file is {len(raw) / 1048576:.1f} MiB; manifests are limited to "
                    f"{MAX_BYTES // 1048576} MiB (split it, or check that the right file was given)",
                )
            )
        if b"\x00" in raw[:8192]:
            raise ManifestError(Problem(Location(file), "", "this is a binary file, not YAML"))
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
            raise ManifestError(
                Problem(
                    Location(file, line, col),
                    "",
                    f"the file is not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save it as UTF-8",
                )
            ) from None
    else:
        text = raw
    loader = _LOADER(text)
    try:
        root = loader.get_single_node()
    except _Abort as exc:
        raise ManifestError(Problem(_mark_loc(file, exc.mark), "", exc.message)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or "invalid YAML"
        if exc.context and exc.problem:
            message = f"{exc.context}: {exc.problem}"
        raise ManifestError(Problem(_mark_loc(file, mark), "", f"invalid YAML: {message}")) from None
    except yaml.YAMLError as exc:
        raise ManifestError(Problem(Location(file), "", f"invalid YAML: {_ESCAPE.sub('?', str(exc))}")) from None
    except RecursionError:
        raise ManifestError(Problem(Location(file), "", f"nesting deeper than {MAX_DEPTH} levels")) from None
    finally:
        loader.dispose()
    problems = [Problem(_mark_loc(file, mark), "", message) for message, mark, _ in loader.problems]
    data = None
    if root is not None:
        data = _Converter(file, problems).convert(root)
    if problems:
        raise ManifestError(problems)
    return Source(file, data, root)


def _mark_loc(file: str, mark: yaml.Mark | None) -> Location:
    if mark is None:
        return Location(file)
    return Location(file, mark.line + 1, mark.column + 1)


class _Converter:
    """Node tree to plain data, constructing only the core YAML scalar types."""

    def __init__(self, file: str, problems: list[Problem]) -> None:
        self.file = file
        self.problems = problems
        self.memo: dict[int, Any] = {}

    def convert(self, node: Node) -> Any:
        cached = self.memo.get(id(node), _MISSING)
        if cached is not _MISSING:
            return cached
        if node.tag not in _PLAIN_TAGS:
            self.problems.append(
                Problem(
                    _mark_loc(self.file, node.start_mark),
                    "",
                    f"unsupported YAML tag {node.tag!r}: manifests hold plain strings, numbers, "
                    "booleans, lists and mappings",
                )
            )
            return None
        result: Any
        if isinstance(node, ScalarNode):
            result = self._scalar(node)
        elif isinstance(node, SequenceNode):
            result = [self.convert(child) for child in node.value]
        else:
            assert isinstance(node, MappingNode)
            result = {}
            for key, value in _merged_items(node):
                if not isinstance(key, ScalarNode):
                    continue
                name = key.value
                if name not in result:
                    result[name] = self.convert(value)
        self.memo[id(node)] = result
        return result

    def _scalar(self, node: ScalarNode) -> Any:
        tag = node.tag
        if tag == _TAG + "int":
            return _SCALARS.construct_yaml_int(node)
        if tag == _TAG + "float":
            return _SCALARS.construct_yaml_float(node)
        if tag == _TAG + "bool":
            return _SCALARS.construct_yaml_bool(node)
        if tag == _TAG + "null":
            return None
        # Strings, and timestamps kept as the text the author wrote (a date parameter stays "2024-01-01").
        return node.value


_MISSING = object()
