"""The second process of :mod:`planner.manifest.yamlsplit`: the flows after the cut, as JSON.

``python -m planner.manifest.split_child`` reads a YAML document on stdin and writes
``{"data": ..., "at": [[path, key line, key column, line, column], ...]}`` (0-based lines of
that document, the key's None for list items); exit 1 on any problem, without a word (the
planner then parses the whole file itself and reports it). A module of its own: the package
imports :mod:`~planner.manifest.yamlsplit`, and ``-m`` must not run a module imported already.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import orjson
from yaml.nodes import MappingNode, Node, SequenceNode

from planner.manifest.yamlsource import PathT, parse_yaml
from planner.manifest.yamlsplit import DEPTH


def positions(root: Node) -> Iterator[tuple[PathT, Any, Node]]:
    """(path, key node or None, value node) of every entry down to :data:`DEPTH` levels."""
    pending: list[tuple[PathT, Node]] = [((), root)]
    while pending:
        path, node = pending.pop()
        if len(path) >= DEPTH:
            continue
        if isinstance(node, MappingNode):
            for key, value in node.value:
                child_path = (*path, key.value)
                yield child_path, key, value
                pending.append((child_path, value))
        elif isinstance(node, SequenceNode):
            for i, value in enumerate(node.value):
                child_path = (*path, i)
                yield child_path, None, value
                pending.append((child_path, value))


def main() -> int:
    import gc

    gc.disable()  # a short process building one document
    try:
        source = parse_yaml(sys.stdin.buffer.read(), "<tail>")
        assert source.root is not None
        at = [
            [list(path), *((key.start_mark.line, key.start_mark.column) if key else (None, None)),
             value.start_mark.line, value.start_mark.column]
            for path, key, value in positions(source.root)
        ]  # fmt: skip
        sys.stdout.buffer.write(orjson.dumps({"data": source.data, "at": at}))
    except BaseException:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
