"""Comparing desired and live bodies: hash first, deepdiff only where hashes differ.

Both sides are first reduced to their *comparison form*: volatile pointers
(provenance, spec-hash markers) and ignored pointers (``ignore_changes``)
removed. Server-filled fields were already dropped by the backend reader.
Equal canonical hashes mean no change and no deepdiff call, which keeps a
no-change plan of thousands of resources close to the cost of reading them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from planner.manifest import IgnoreRule
from planner.plan import ABSENT, FieldDiff
from planner.resources import Address, digest, get_pointer, has_pointer, join_pointer, set_pointer, without


def ignored_pointers(address: Address, rules: Iterable[IgnoreRule]) -> tuple[str, ...]:
    """Pointers ignored for this resource's kind (``*`` matches every kind)."""
    return tuple(sorted({r.pointer for r in rules if r.kind in ("*", address.kind)}))


def comparison_form(body: Mapping[str, Any], excluded: Iterable[str]) -> dict[str, Any]:
    return without(body, excluded)


def comparison_hash(body: Mapping[str, Any], excluded: Iterable[str]) -> str:
    return digest(comparison_form(body, excluded))


def keep_live_values(desired: Mapping[str, Any], live: Mapping[str, Any], pointers: Sequence[str]) -> dict[str, Any]:
    """The body to write: desired, but with live's value at each ignored pointer.

    A full PUT must not wipe what an operator set by hand where the manifest
    said to ignore it (a paused CronWorkflow stays paused).
    """
    if not pointers:
        return dict(desired)
    result = copy.deepcopy(dict(desired))
    for pointer in pointers:
        if has_pointer(live, pointer):
            set_pointer(result, pointer, copy.deepcopy(get_pointer(live, pointer)))
        else:
            result = without(result, [pointer])
    return result


def field_diffs(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, sensitive: Sequence[str] = ()
) -> tuple[FieldDiff, ...]:
    """Leaf-level differences as JSON pointers, sorted; sensitive pointers flagged."""
    if before is None and after is None:
        return ()
    left = dict(before) if before is not None else {}
    right = dict(after) if after is not None else {}
    # threshold_to_diff_deeper=0: always go down to leaves (deepdiff otherwise reports a whole mapping
    # as changed when few keys are shared, which hides the one field a reviewer needs to see)
    from deepdiff import DeepDiff  # ~0.1 s to import (with pydantic): a plan without changes never needs it

    tree = DeepDiff(left, right, view="tree", verbose_level=2, threshold_to_diff_deeper=0)
    result: list[FieldDiff] = []
    for report in tree.values():
        for level in report:
            parts = level.path(output_format="list")
            pointer = join_pointer(parts)
            old = ABSENT if _absent(level.t1) else level.t1
            new = ABSENT if _absent(level.t2) else level.t2
            result.append(FieldDiff(pointer, old, new, is_sensitive(pointer, sensitive)))
    result.sort(key=lambda d: _pointer_key(d.path))
    return tuple(result)


def _absent(value: Any) -> bool:
    return type(value).__name__ == "NotPresent"


def _pointer_key(pointer: str) -> list[tuple[int, int | str]]:
    key: list[tuple[int, int | str]] = []
    for part in pointer.split("/")[1:]:
        key.append((0, int(part)) if part.isdigit() else (1, part))
    return key


def is_sensitive(pointer: str, sensitive: Sequence[str]) -> bool:
    """A diff is sensitive if it is at, inside, or contains a sensitive pointer."""
    for s in sensitive:
        if pointer == s or pointer.startswith(s + "/") or s.startswith(pointer + "/") or pointer == "":
            return True
    return False
