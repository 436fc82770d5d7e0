"""Wording shared by the text and Markdown renderers, computed from the plan's JSON view."""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections.abc import Iterator
from typing import Any

ACTION_ORDER = ["delete", "replace", "move", "adopt", "update", "create"]
SYMBOLS = {"create": "+", "update": "~", "replace": "-/+", "delete": "-", "adopt": "<=", "move": "->", "noop": " "}
VERBS = {
    "create": "will be created",
    "update": "will be updated in place",
    "replace": "must be replaced",
    "delete": "will be destroyed",
    "adopt": "will be adopted (taken over by flowplan)",
    "move": "will be moved (renamed)",
}
CAUSES = {
    "manifest": "",
    "drift": "changed outside flowplan; will be restored",
    "deleted-outside": "deleted outside flowplan; will be recreated",
    "orphan": "no longer in the manifest",
    "destroy": "destroy",
    "adopt": "adopted",
    "moved": "",
    "manifest+drift": "manifest changed, and it was also changed outside flowplan",
}
MAX_VALUE = 200


def fmt(value: Any, limit: int = MAX_VALUE) -> str:
    """A value as one line of JSON, shortened in the middle when long."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    if len(text) > limit:
        keep = (limit - 5) // 2
        text = f"{text[:keep]} ... {text[-keep:]}"
    return text


def summary_line(summary: dict[str, int]) -> str:
    parts = [
        f"{summary['create']} to create",
        f"{summary['update']} to update",
        f"{summary['replace']} to replace",
        f"{summary['delete']} to delete",
    ]
    if summary.get("adopt"):
        parts.append(f"{summary['adopt']} to adopt")
    if summary.get("move"):
        parts.append(f"{summary['move']} to move")
    text = "Plan: " + ", ".join(parts) + "."
    if summary.get("unchanged"):
        text += f" {summary['unchanged']} unchanged."
    return text


def sorted_changes(view: dict[str, Any]) -> list[dict[str, Any]]:
    """Destructive actions first, then by kind and name (the plan's own order within an action)."""
    rank = {a: i for i, a in enumerate(ACTION_ORDER)}
    return sorted(view["changes"], key=lambda c: (rank.get(c["action"], 9), c["kind"], c["name"], c["address"]))


def leaves(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Flatten a body into (JSON pointer, scalar) pairs, for showing what a create will write."""
    if isinstance(value, dict):
        if not value:
            return [(prefix or "/", {})]
        out: list[tuple[str, Any]] = []
        for key, item in value.items():
            out.extend(leaves(item, f"{prefix}/{str(key).replace('~', '~0').replace('/', '~1')}"))
        return out
    if isinstance(value, list):
        if not value:
            return [(prefix or "/", [])]
        out = []
        for i, item in enumerate(value):
            out.extend(leaves(item, f"{prefix}/{i}"))
        return out
    return [(prefix or "/", value)]


def first_leaves(value: Any, limit: int) -> tuple[list[tuple[str, Any]], int]:
    """The first ``limit`` of :func:`leaves` and how many there are, without flattening the rest.

    A create shows its first few fields; flattening all of each body would walk 30,000 whole bodies
    of an all-create plan of 10,000 flows to show 40 fields of each.
    """
    return list(itertools.islice(_iter_leaves(value, ""), limit)), _count_leaves(value)


def _iter_leaves(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        if not value:
            yield (prefix or "/", {})
        for key, item in value.items():
            yield from _iter_leaves(item, f"{prefix}/{str(key).replace('~', '~0').replace('/', '~1')}")
    elif isinstance(value, list):
        if not value:
            yield (prefix or "/", [])
        for i, item in enumerate(value):
            yield from _iter_leaves(item, f"{prefix}/{i}")
    else:
        yield (prefix or "/", value)


def _count_leaves(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_count_leaves(v) for v in value.values()) if value else 1
    if isinstance(value, list):
        return sum(_count_leaves(v) for v in value) if value else 1
    return 1


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@functools.lru_cache(maxsize=65536)
def friendly(pointer: str) -> str:
    """``/spec/templates/1/container/image`` → ``spec.templates[1].container.image``; odd keys quoted.

    Memoised: a plan of 1,000 creates shows 40 fields of each, the same few hundred pointers.
    """
    if pointer in ("", "/"):
        return "(whole object)"
    out = ""
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if part.isdigit():
            out += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            out += ("." if out else "") + part
        else:
            out += f"[{json.dumps(part)}]"
    return out


def diff_lines(change: dict[str, Any]) -> list[tuple[str, str]]:
    """(sign, text) lines for a change's field diffs, in pointer order."""
    lines: list[tuple[str, str]] = []
    for d in change["field_diffs"]:
        path = friendly(d["path"])
        if d["kind"] == "changed":
            lines.append(("~", f"{path}: {fmt(d['before'])} -> {fmt(d['after'])}"))
        elif d["kind"] == "added":
            lines.append(("+", f"{path}: {fmt(d['after'])}"))
        else:
            lines.append(("-", f"{path}: {fmt(d['before'])}"))
    return lines


def why(change: dict[str, Any]) -> str:
    parts = []
    cause = CAUSES.get(change["cause"], change["cause"])
    if cause and change["cause"] not in ("orphan", "destroy"):
        parts.append(cause)
    if change.get("reason") and change["reason"] not in parts:
        parts.append(change["reason"])
    return "; ".join(p for p in parts if p)


def managers_text(change: dict[str, Any]) -> str:
    managers = change.get("managers") or []
    if not managers:
        return ""
    last = managers[-1]
    text = f"last written by {last.get('manager', '?')}"
    if last.get("time"):
        text += f" at {last['time']}"
    return text
