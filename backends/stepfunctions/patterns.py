"""EventBridge event patterns and input transformers for triggers. Pure.

A flowplan event is ``{"source", "type", "data"}``; on EventBridge it is an
event with that ``source``, ``detail-type`` and ``detail``, so a manifest
filter path ``file.name`` is ``detail.file.name`` and nests in the pattern.

=======  =================================================================
op       pattern (per value)
=======  =================================================================
eq       string / boolean / null as is; number ``{"numeric": ["=", n]}``
ne       ``{"anything-but": v}``; a boolean becomes the other boolean
in       each value as ``eq`` would write it (the list is OR-ed)
prefix   ``{"prefix": "v"}`` (numbers written as JSON text)
exists   ``{"exists": true}``
gt …     ``{"numeric": [">", n]}`` …; several on one path merge into one range
=======  =================================================================

EventBridge ANDs different fields and ORs the values of one field, so two
filters on one path only combine when both are numeric comparisons (a range);
``exists`` next to another filter on its path is implied and dropped. Anything
else cannot be expressed and is a ManifestError at the filter.

``after: FLOW`` listens to Step Functions' own "Execution Status Change"
events on the default bus, status ``SUCCEEDED``, for the upstream machine.
Executions started on an alias (all of flowplan's) may carry the machine ARN
or a qualified one (``…:NAME:live`` / ``…:NAME:3``) depending on the field, so
the pattern matches the bare ARN *or* any ``ARN:`` qualification — never
another machine whose name merely starts the same (the colon ends the name).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from planner.errors import Problem
from planner.manifest import Event, EventFilter, render_value

__all__ = [
    "EXECUTION_STATUS_CHANGE",
    "MAX_PATTERN_CHARS",
    "after_pattern",
    "event_pattern",
    "input_transformer",
]

EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"
#: PutRule's EventPattern limit.
MAX_PATTERN_CHARS = 4096
_NUMERIC = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def after_pattern(upstream_machine_arn: str) -> dict[str, Any]:
    """The pattern of an ``after:`` trigger: the upstream machine's executions that succeeded."""
    return {
        "source": ["aws.states"],
        "detail-type": [EXECUTION_STATUS_CHANGE],
        "detail": {
            "status": ["SUCCEEDED"],
            "stateMachineArn": [upstream_machine_arn, {"prefix": f"{upstream_machine_arn}:"}],
        },
    }


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(value: Any) -> Any:
    return {"numeric": ["=", value]} if _is_number(value) else value


def _matchers(flt: EventFilter) -> list[Any]:
    value = flt.value
    if flt.op == "eq":
        return [_equal(value)]
    if flt.op == "ne":
        if isinstance(value, bool):
            return [not value]
        return [{"anything-but": value}]
    if flt.op == "in":
        return [_equal(v) for v in value]
    if flt.op == "prefix":
        return [{"prefix": render_value(value)}]
    if flt.op == "exists":
        return [{"exists": True}]
    return [{"numeric": [_NUMERIC[flt.op], value]}]


def filter_problem(flt: EventFilter) -> str | None:
    """Why one filter has no EventBridge form on its own, or None."""
    if flt.op == "ne" and not (isinstance(flt.value, str | bool) or _is_number(flt.value)):
        return f"op 'ne' compares a string, number or boolean on EventBridge, not {type(flt.value).__name__}"
    if flt.op == "in" and not flt.value:
        return "op 'in' needs at least one value"
    if flt.op == "in" and any(isinstance(v, dict | list) for v in flt.value):
        return "op 'in' takes strings, numbers, booleans or null on EventBridge"
    if flt.op == "eq" and isinstance(flt.value, dict | list):
        return "op 'eq' compares a string, number, boolean or null on EventBridge"
    return None


def _combine(path: str, filters: list[tuple[int, EventFilter]], where: str) -> tuple[list[Any], list[Problem]]:
    """One field's matcher list from every filter on that path (see the module docstring)."""
    kept = [(i, f) for i, f in filters if f.op != "exists"] or filters[:1]
    if len(kept) == 1:
        return _matchers(kept[0][1]), []
    if all(f.op in _NUMERIC for _, f in kept):
        bounds: list[Any] = []
        for _, f in kept:
            bounds += [_NUMERIC[f.op], f.value]
        return [{"numeric": bounds}], []
    index, second = kept[1]
    first = kept[0][1]
    return [], [
        Problem(
            second.loc,
            f"{where}.filters[{index}]",
            f"ops {first.op!r} and {second.op!r} on the same path {path!r} cannot both hold in one EventBridge "
            "pattern (values of one field are OR-ed; only numeric comparisons combine into a range)",
            "keep one filter per path, or use a numeric range (gte and lt)",
        )
    ]


def event_pattern(event: Event, where: str) -> tuple[dict[str, Any], list[Problem]]:
    """The pattern of an ``event:`` trigger, and the problems that keep it from being faithful."""
    problems: list[Problem] = []
    by_path: dict[str, list[tuple[int, EventFilter]]] = {}
    for index, flt in enumerate(event.filters):
        reason = filter_problem(flt)
        if reason:
            problems.append(Problem(flt.loc, f"{where}.filters[{index}]", reason))
            continue
        by_path.setdefault(flt.path, []).append((index, flt))
    detail: dict[str, Any] = {}
    for path in sorted(by_path):
        matchers, found = _combine(path, by_path[path], where)
        problems += found
        if found:
            continue
        node = detail
        parts = path.split(".")
        clash = False
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                clash = True
                break
            node = child
        if clash or isinstance(node.get(parts[-1]), dict):
            index, flt = by_path[path][0]
            problems.append(
                Problem(
                    flt.loc,
                    f"{where}.filters[{index}]",
                    f"path {path!r} is both a value and a parent of another filtered path",
                    "filter on the leaves only",
                )
            )
            continue
        node[parts[-1]] = matchers
    pattern: dict[str, Any] = {"source": [event.source], "detail-type": [event.type]}
    if detail:
        pattern["detail"] = detail
    text = json.dumps(pattern, separators=(",", ":"))
    if len(text) > MAX_PATTERN_CHARS:
        problems.append(
            Problem(
                event.loc,
                where,
                f"its EventBridge pattern is {len(text)} characters; EventBridge allows {MAX_PATTERN_CHARS}",
                "use fewer or shorter filter values",
            )
        )
    return pattern, problems


def input_transformer(parameters: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Event payload paths → execution input: ``{"param": "<param>"}`` with ``$.detail.<path>``.

    Placeholders sit inside quotes, so every value reaches the flow as text
    (numbers as their digits), like every other parameter. Unmapped parameters
    take their defaults inside the state machine.
    """
    pairs = sorted(parameters)
    paths = {name: f"$.detail.{path}" for name, path in pairs}
    template = "{" + ",".join(f'"{name}":"<{name}>"' for name, _ in pairs) + "}"
    return {"InputPathsMap": paths, "InputTemplate": template}
