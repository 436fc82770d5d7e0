"""Parsing a large manifest's flows in two processes.

libyaml through pyyaml builds a Python object and two position marks per node: composing
and converting the 1.1 million nodes of a 10,000-flow manifest is 2.5 s, on one core, while
the data it yields decodes from JSON in 0.16 s. So a manifest of :data:`SPLIT_FROM` bytes or
more is cut at a flow boundary in its ``flows:`` block: a second process
(``python -m planner.manifest.split_child``) parses the flows after the cut while the planner
parses the rest (:data:`HEAD_SHARE` of the block's bytes), and hands back the data as JSON
with the positions the loader asks for (every entry down to ``flows.NAME.steps.STEP``,
:data:`DEPTH` levels, on the original lines).

Only the usual layout is cut: a block ``flows:`` mapping at the top level, no directives. What
could reach across the cut fails in one half (an alias to an anchor in the other half is
undefined there; a second document or a name used in both halves is refused), and anything
that fails, a problem found in either half or a child that does not answer, makes
:func:`parse_split` return None: the caller parses the whole file as before, so every message
about a manifest is exactly what the one-process parse says.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any

import orjson

from planner.child import Child
from planner.errors import ManifestError
from planner.manifest.yamlsource import Source, decode, parse_yaml

#: Smaller manifests are parsed in one process: starting the second one costs about 0.15 s.
SPLIT_FROM = 1024 * 1024
#: The share of the flows block (bytes) this process parses: the other one starts Python and its imports first, and
#: hands back JSON (balanced on these machines: both halves are ready within a tenth of a second).
HEAD_SHARE = 0.6
#: Positions recorded in the second half: ``flows.NAME.steps.STEP`` deep (what the loader locates).
DEPTH = 4
#: The child's command line (tests put a failing one here).
COMMAND: list[str] = [sys.executable, "-m", "planner.manifest.split_child"]

_FLOWS = re.compile(r"^flows:[ \t]*(#.*)?\r?$", re.M)
# Line starts spelled with their newline: a literal prefix the regex engine searches for quickly.
_TOP = re.compile(r"\n[^\s#-]")
_KEY = re.compile(r"\n([ \t]+)[^\s#-]")
# Directives (%TAG, %YAML) speak for the whole file: such a file is parsed in one piece.
_DIRECTIVE = re.compile(r"^%", re.M)


@dataclass(frozen=True)
class Cut:
    """``head`` (the file without the second half of its flows) and ``tail`` (those flows, as a document).

    Line ``n`` of ``tail`` (0-based; its first line is ``flows:``) is line ``n + offset`` of the file.
    """

    head: str
    tail: str
    offset: int


def flow_start(text: str, share: float) -> tuple[int, int] | None:
    """Where the first flow after ``share`` of the top-level block ``flows:`` mapping starts (not its
    first flow), and where the block ends; None when the file is not laid out that way or that flow
    does not exist."""
    found = _FLOWS.search(text)
    if found is None:
        return None
    body_start = found.end()
    following = _TOP.search(text, body_start)
    body_end = following.start() + 1 if following else len(text)
    first = _KEY.search(text, body_start, body_end)
    if first is None:
        return None
    key = re.compile("\n" + re.escape(first.group(1)) + r"[^\s#-]")
    second = key.search(text, max(first.end(), body_start + int((body_end - body_start) * share)), body_end)
    if second is None:
        return None
    return second.start() + 1, body_end


def cut(text: str) -> Cut | None:
    """The file cut in the middle of its flows; None when it is not the usual layout."""
    if _DIRECTIVE.search(text):
        return None
    found = flow_start(text, HEAD_SHARE)
    if found is None:
        return None
    middle, body_end = found
    tail_text = text[middle:body_end]
    if "<<" in tail_text:
        return None  # merge keys: one parse places merged keys at their anchor, the way the loader expects
    if not tail_text.endswith("\n"):
        tail_text += "\n"
    # the head keeps the tail's lines as blank ones: what follows the flows stays on its line
    head = text[:middle] + "\n" * tail_text.count("\n") + text[body_end:]
    return Cut(head, "flows:\n" + tail_text, text.count("\n", 0, middle) - 1)


def parse_split(raw: bytes, file: str) -> Source | None:
    """:func:`parse_yaml` of ``raw`` in two processes, or None: the caller then parses it whole."""
    if len(raw) < SPLIT_FROM:
        return None
    try:
        text = decode(raw, file)
    except ManifestError:
        return None
    pieces = cut(text)
    if pieces is None:
        return None
    child = Child(COMMAND, pieces.tail.encode())
    try:
        head = parse_yaml(pieces.head, file)
        out = child.answer()
    except ManifestError:
        return None
    finally:
        child.stop()  # no-op once it answered
    if out is None:
        return None
    try:
        return _merged(head, orjson.loads(out), pieces.offset)
    except (ValueError, KeyError, TypeError):
        return None  # an answer that is not what the child writes: parse it whole


def _merged(head: Source, answer: dict[str, Any], offset: int) -> Source | None:
    data = head.data
    tail_flows = (answer.get("data") or {}).get("flows")
    if not isinstance(data, dict) or not isinstance(data.get("flows"), dict) or not isinstance(tail_flows, dict):
        return None
    flows: dict[str, Any] = data["flows"]
    if any(name in flows for name in tail_flows):
        return None  # a name in both halves: the whole parse reports the duplicate where it is
    flows.update(tail_flows)
    head.remote = {tuple(path): (offset, *place) for path, *place in answer["at"] if len(path) > 1}
    return head
