"""Read YAML into plain data while keeping where every node came from.

pyyaml's loaders are wrong for a manifest in three ways: they keep the last
of two duplicate keys without a word, they construct whatever a tag asks for,
and an alias bomb ("billion laughs") loads in milliseconds only to hang
whatever walks the result later. This module lets libyaml compose the node
graph (aliases stay shared there, so composing a bomb is cheap and bounded by
the file's size) and then makes exactly one pass over it that

* counts the *expanded* size of every node, memoised per node, so a bomb is
  rejected after visiting each distinct node once, before anything else walks it;
* rejects duplicate keys, non-scalar keys and foreign tags, naming the dotted path;
* bounds nesting depth (libyaml itself stops at 1,000 levels, we at 64);
* converts nodes to plain ``dict``/``list``/scalars, constructing only core scalars.

Positions are looked up lazily from the node tree (:meth:`Source.locate`),
so a 10,000-flow manifest does not pay for a position table it never reads.

The cyclic garbage collector is paused while composing and converting: the
pass allocates about a million small, acyclic objects, and generation-2
collections triggered by them made parsing three times slower.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from planner import heap
from planner.errors import Location, ManifestError, Problem
from planner.safe_files import read_regular

#: Largest input accepted; a manifest of 10,000 realistic flows is about 6 MiB.
MAX_BYTES = 8 * 1024 * 1024
#: Largest number of nodes after alias expansion (a 10,000-flow manifest has about 1.2 million).
MAX_EXPANDED_NODES = 5_000_000
#: Deepest nesting accepted; real manifests stay under 12.
MAX_DEPTH = 64

PathT = tuple[str | int, ...]

_TAG = "tag:yaml.org,2002:"
_MERGE = _TAG + "merge"
_STR = _TAG + "str"
_MAP = _TAG + "map"
_SEQ = _TAG + "seq"
_PLAIN_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp", "seq", "map", "merge")}


def dotted(path: Sequence[str | int]) -> str:
    """``('flows', 'train', 'steps', 'fit', 'next', 0)`` → ``flows.train.steps.fit.next[0]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


class _CachingResolver(Resolver):
    """pyyaml's resolver, with the implicit tag of plain scalars memoised by text.

    A large manifest repeats the same few hundred plain words (``command``,
    ``next``, ``python``, ``500m``); resolving each with a regex per
    occurrence was a tenth of the parse time.
    """

    _implicit_cache: dict[str, str] = {}

    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        # Called by libyaml's composer for every node: the answers pyyaml's resolver would give,
        # without its generic path for the common cases (quoted scalars, mappings, sequences).
        if kind is ScalarNode:
            if not implicit[0]:
                return _STR  # quoted: a string, whatever it looks like
            cached = self._implicit_cache.get(value)
            if cached is None:
                cached = super().resolve(kind, value, implicit)
                if len(self._implicit_cache) < 100_000:
                    self._implicit_cache[value] = cached
            return cached
        if kind is MappingNode:
            return _MAP
        if kind is SequenceNode:
            return _SEQ
        return super().resolve(kind, value, implicit)

    # Path resolvers (``add_path_resolver``) are never registered; skip their bookkeeping per node.
    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None


def _loader_class() -> type:
    """libyaml's parser and composer (C) when present, pyyaml's pure-Python ones otherwise."""
    try:
        from yaml._yaml import CParser  # type: ignore[import-not-found]

        class _CLoader(CParser, _CachingResolver):  # type: ignore[misc]
            def __init__(self, stream: Any) -> None:
                CParser.__init__(self, stream)
                _CachingResolver.__init__(self)

        return _CLoader
    except ImportError:  # pragma: no cover - libyaml is in every wheel we ship against
        from yaml.composer import Composer
        from yaml.parser import Parser
        from yaml.reader import Reader
        from yaml.scanner import Scanner

        class _PyLoader(Reader, Scanner, Parser, Composer, _CachingResolver):
            def __init__(self, stream: Any) -> None:
                Reader.__init__(self, stream)
                Scanner.__init__(self)
                Parser.__init__(self)
                Composer.__init__(self)
                _CachingResolver.__init__(self)

        return _PyLoader


_LOADER = _loader_class()
_SCALARS = SafeConstructor()


@dataclass
class Source:
    """A parsed YAML document: plain ``data`` plus the node tree for positions."""

    file: str
    data: Any
    root: Node | None
    _index: dict[int, dict[Any, tuple[Node, Node]]] = field(default_factory=dict, repr=False)
    _walked: dict[PathT, tuple[Node | None, Node | None, bool]] = field(default_factory=dict, repr=False)

    def release(self) -> None:
        """Drop the node tree and its indexes; positions are unknown (line 1) afterwards."""
        self.root = None
        self._index.clear()
        self._walked.clear()

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
        key_node, node, _ = self._find(tuple(path))
        return key_node, node

    def _find(self, path: PathT) -> tuple[Node | None, Node | None, bool]:
        """``_walk`` plus whether ``path`` exists, memoised per path.

        The loader asks for the position of every flow and step; their
        parents are shared, so each lookup is one step from a cached parent.
        """
        found = self._walked.get(path)
        if found is not None:
            return found
        if not path:
            result: tuple[Node | None, Node | None, bool] = (None, self.root, True)
        else:
            key_node, node, exists = self._find(path[:-1])
            part = path[-1]
            result = (key_node, node, False)
            if exists and isinstance(node, MappingNode):
                hit = self._mapping(node).get(part)
                if hit is not None:
                    result = (hit[0], hit[1], True)
            elif exists and isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                result = (None, node.value[part], True)
        self._walked[path] = result
        return result

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
        if key.tag == _MERGE:
            sources = value.value if isinstance(value, SequenceNode) else [value]
            for src in sources:
                if isinstance(src, MappingNode):
                    merged.extend(_merged_items(src))
        else:
            yield key, value
    yield from merged


_ESCAPE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def read_limited(path: str | os.PathLike[str]) -> bytes:
    """A file's bytes, reading at most one byte past :data:`MAX_BYTES`.

    Only a regular file is read (:func:`planner.safe_files.read_regular`): a symlink, FIFO or device
    raises :class:`~planner.safe_files.UnsafeFile`, an ``OSError`` saying what it is.
    """
    return read_regular(path, limit=MAX_BYTES)


def decode(raw: bytes, file: str) -> str:
    """Bytes to text, refusing what cannot be a manifest (too big, binary, not UTF-8)."""
    if len(raw) > MAX_BYTES:
        limit = MAX_BYTES // 1048576
        size = f"more than {limit}" if len(raw) == MAX_BYTES + 1 else f"{len(raw) / 1048576:.1f}"
        raise ManifestError(
            Problem(
                Location(file),
                "",
                f"the file is {size} MiB; manifests are limited to {limit} MiB "
                "(split it, or check that the right file was given)",
            )
        )
    if b"\x00" in raw[:8192]:
        raise ManifestError(
            Problem(Location(file), "", "this is a binary file, not YAML (check that the right file was given)")
        )
    try:
        return raw.decode("utf-8-sig")
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


def parse_yaml(raw: bytes | str, file: str) -> Source:
    """Parse one YAML document into a :class:`Source`; every problem is a ``ManifestError``."""
    text = decode(raw, file) if isinstance(raw, bytes) else raw
    with heap.paused():
        loader = _LOADER(text)
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            raise ManifestError(_syntax_problem(text, file, exc)) from None
        except yaml.reader.ReaderError as exc:
            raise ManifestError(_reader_problem(text, file, exc)) from None
        except yaml.YAMLError as exc:
            raise ManifestError(Problem(Location(file), "", f"invalid YAML: {_ESCAPE.sub('?', str(exc))}")) from None
        except RecursionError:  # pragma: no cover - only the pure-Python parser recurses
            raise ManifestError(Problem(Location(file), "", f"nesting deeper than {MAX_DEPTH} levels")) from None
        finally:
            loader.dispose()
        problems: list[Problem] = []
        data = None
        converter = _Converter(file, problems)
        if root is not None:
            try:
                data = converter.convert(root, (), 0)
            except _Abort as exc:
                raise ManifestError(Problem(_mark_loc(file, exc.mark), _short(exc.path), exc.message)) from None
    if problems:
        raise ManifestError(problems)
    return Source(file, data, root, _walked=converter.walked)


def _reader_problem(text: str, file: str, exc: yaml.reader.ReaderError) -> Problem:
    """A character YAML does not allow (a control character), at its line and column."""
    position = max(0, min(int(exc.position), len(text)))
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
    return Problem(
        Location(file, line, column),
        "",
        f"invalid YAML: the control character U+{code:04X} is not allowed in a YAML file",
        "remove it; inside double quotes an escape such as \\x07 writes it on purpose",
    )


def _syntax_problem(text: str, file: str, exc: yaml.MarkedYAMLError) -> Problem:
    """A YAML syntax error as a Problem, with the dotted path of where the parser got to."""
    mark = exc.problem_mark or exc.context_mark
    problem = (exc.problem or "invalid YAML").strip()
    if exc.context and exc.problem:
        problem = f"{exc.context.strip()}: {problem}"
    hint = None
    if mark is not None and _char_at(text, mark) == "\t":
        problem = "a tab character where YAML expects spaces"
        hint = "YAML indents with spaces only; replace the tab with spaces"
    elif "mapping values are not allowed" in problem:
        hint = "a value that contains ': ' must be quoted, for example \"echo status: ok\""
    elif "found undefined alias" in problem or "found unknown alias" in problem:
        hint = "define the anchor (&name) before its alias (*name)"
    path, last_line = _path_before_error(text)
    if mark is not None and mark.line > last_line + 1 and path:
        # The parser reads ahead: the key just before the error may not have become an event
        # yet, so only the enclosing mapping is certain.
        path = path[:-1]
    return Problem(_mark_loc(file, mark), dotted(path), f"invalid YAML: {problem}", hint)


def _char_at(text: str, mark: Any) -> str:
    """The character a parser mark points at ('' past the end)."""
    lines = text.split("\n")
    if 0 <= mark.line < len(lines) and 0 <= mark.column < len(lines[mark.line]):
        return lines[mark.line][mark.column]
    return ""


def _short(path: PathT) -> str:
    """A dotted path, elided in the middle when it is absurdly deep."""
    if len(path) <= 12:
        return dotted(path)
    return f"{dotted(path[:6])}...{dotted(path[-2:])}" if isinstance(path[-2], str) else f"{dotted(path[:6])}..."


def _path_before_error(text: str) -> tuple[PathT, int]:
    """Where the event stream had got to when parsing failed, and the line of its last event (0-based).

    Best effort, for the message only.
    """
    stack: list[list[Any]] = []  # [kind, key-or-index, expecting_key]
    path: PathT = ()
    line = 0
    try:
        for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            line = event.start_mark.line if event.start_mark is not None else line
            if isinstance(event, ScalarEvent | AliasEvent | MappingStartEvent | SequenceStartEvent):
                if stack and stack[-1][0] == "map":
                    frame = stack[-1]
                    if frame[2]:
                        frame[1] = event.value if isinstance(event, ScalarEvent) else "?"
                        frame[2] = False
                        path = tuple(f[1] for f in stack if f[1] is not None and f[1] != -1)
                        continue
                    frame[2] = True
                elif stack:
                    stack[-1][1] += 1
                if isinstance(event, MappingStartEvent):
                    stack.append(["map", None, True])
                elif isinstance(event, SequenceStartEvent):
                    stack.append(["seq", -1, False])
            elif isinstance(event, MappingEndEvent | SequenceEndEvent):
                stack.pop()
                if stack and stack[-1][0] == "map":
                    stack[-1][2] = True
            path = tuple(f[1] for f in stack if f[1] is not None and f[1] != -1)
    except yaml.YAMLError:
        pass
    except Exception:  # pragma: no cover - the path is decoration; never let it hide the real error
        return (), 0
    return path, line


def _mark_loc(file: str, mark: Any) -> Location:
    if mark is None:
        return Location(file)
    return Location(file, mark.line + 1, mark.column + 1)


class _Abort(Exception):
    """Stops the pass at once (alias bomb, nesting too deep)."""

    def __init__(self, message: str, mark: Any, path: PathT) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark
        self.path = path


class _Converter:
    """Node graph to plain data in one memoised pass, checking as it goes.

    ``memo`` maps a node's id to its converted value and expanded size, so a
    node reached again through an alias costs one dict lookup: the pass is
    linear in the number of *distinct* nodes even for a bomb.
    """

    def __init__(self, file: str, problems: list[Problem]) -> None:
        self.file = file
        self.problems = problems
        self.memo: dict[int, tuple[Any, int]] = {}
        self.expanded = 0
        #: ``Source._find``'s answers for every path to a non-string value, recorded on the way: the
        #: loader asks for the position of every flow, step and trigger, and walking to each from the
        #: root again was a twentieth of loading a large manifest. Strings are looked up on demand.
        self.walked: dict[PathT, tuple[Node | None, Node | None, bool]] = {}

    def _problem(self, node: Node, path: PathT, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(_mark_loc(self.file, node.start_mark), dotted(path), message, hint))

    def convert(self, node: Node, path: PathT, depth: int) -> Any:
        return self._convert(node, path, depth, node.start_mark)[0]

    def _convert(self, node: Node, path: PathT, depth: int, ref: Any) -> tuple[Any, int]:
        """Convert ``node``, reached at ``path``; ``ref`` marks where it is referenced.

        libyaml resolves an alias to the anchored node itself, so a node met
        again carries its anchor's position; problems about *this* use of it
        point at ``ref`` (its key, or the enclosing list) instead.
        """
        cached = self.memo.get(id(node))
        if cached is not None:
            self._count(cached[1], ref, path)
            return cached
        if depth > MAX_DEPTH:
            raise _Abort(
                f"nesting deeper than {MAX_DEPTH} levels; a manifest never needs that many",
                node.start_mark,
                path,
            )
        tag = node.tag
        if tag not in _PLAIN_TAGS:
            self._problem(
                node,
                path,
                f"unsupported YAML tag {tag.replace(_TAG, '!!')!r}",
                "manifests hold plain strings, numbers, booleans, lists and mappings; remove the tag",
            )
            result: tuple[Any, int] = (None, 1)
        elif isinstance(node, ScalarNode):
            result = (self._scalar(node), 1)
        elif isinstance(node, SequenceNode):
            items = []
            size = 1
            for i, child in enumerate(node.value):
                if type(child) is ScalarNode and child.tag == _STR:
                    items.append(child.value)  # the common case, without a call or a path
                    size += 1
                    self.expanded += 1
                    continue
                child_path = (*path, i)
                self.walked[child_path] = (None, child, True)
                value, child_size = self._convert(child, child_path, depth + 1, node.start_mark)
                items.append(value)
                size += child_size
            result = (items, size)
        else:
            assert isinstance(node, MappingNode)
            result = self._mapping(node, path, depth)
        self.memo[id(node)] = result
        self._count(1 if isinstance(node, ScalarNode) else result[1], ref, path, fresh=True)
        return result

    def _count(self, size: int, mark: Any, path: PathT, *, fresh: bool = False) -> None:
        """Add a node's expanded size to the document's total; a fresh node's children were counted already."""
        self.expanded += 1 if fresh else size
        if self.expanded > MAX_EXPANDED_NODES:
            raise _Abort(
                f"the document expands to more than {MAX_EXPANDED_NODES:,} nodes through aliases "
                "(an alias bomb?); write the repeated parts out or use fewer nested aliases",
                mark,
                path,
            )

    def _mapping(self, node: MappingNode, path: PathT, depth: int) -> tuple[dict[str, Any], int]:
        result: dict[str, Any] = {}
        seen: dict[str, Node] = {}
        size = 1
        merges: list[tuple[Node, Node]] = []
        for key, value in node.value:
            if not isinstance(key, ScalarNode):
                self._problem(key, path, "mapping keys must be plain strings, not lists or mappings")
                continue
            if key.tag == _MERGE:
                merges.append((key, value))
                continue
            name = key.value
            if key.tag not in _PLAIN_TAGS:
                self._problem(
                    key,
                    (*path, name),
                    f"unsupported YAML tag {key.tag.replace(_TAG, '!!')!r} on a key",
                    "remove the tag",
                )
            first = seen.get(name)
            if first is not None:
                self._problem(
                    key,
                    (*path, name),
                    f"duplicate key {name!r} (first defined at line {first.start_mark.line + 1})",
                    "YAML would silently keep only the last one; remove or rename one of them",
                )
                continue
            seen[name] = key
            if type(value) is ScalarNode and value.tag == _STR:
                result[name] = value.value  # the common case, without a call or a path
                size += 2
                self.expanded += 1
                continue
            child_path = (*path, name)
            self.walked[child_path] = (key, value, True)
            converted, child_size = self._convert(value, child_path, depth + 1, key.start_mark)
            result[name] = converted
            size += 1 + child_size
        for merge_key, merge in merges:
            converted, child_size = self._convert(merge, (*path, "<<"), depth + 1, merge_key.start_mark)
            size += child_size
            sources = converted if isinstance(converted, list) else [converted]
            if not all(isinstance(s, dict) for s in sources):
                self._problem(merge_key, (*path, "<<"), "a merge key (<<) takes a mapping or a list of mappings")
                continue
            for src in sources:
                for k, v in src.items():
                    result.setdefault(k, v)
        return result, size

    @staticmethod
    def _scalar(node: ScalarNode) -> Any:
        tag = node.tag
        if tag == _TAG + "str":
            return node.value
        if tag == _TAG + "int":
            return _SCALARS.construct_yaml_int(node)
        if tag == _TAG + "float":
            return _SCALARS.construct_yaml_float(node)
        if tag == _TAG + "bool":
            return _SCALARS.construct_yaml_bool(node)
        if tag == _TAG + "null":
            return None
        # Timestamps are kept as the text the author wrote (a date parameter stays "2024-01-01").
        return node.value
