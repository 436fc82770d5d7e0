"""Manifest event filters as Argo Events data filters.

flowplan events are backend-neutral envelopes ``{"source", "type", "data"}``
posted to a webhook EventSource, so a Sensor sees them under ``body`` and a
manifest filter path ``bucket`` is ``body.data.bucket``.

What Argo Events does with a data filter (``pkg/sensors/dependencies/filter.go``,
v1.9): the path must exist (a missing path fails the filter); the ``value`` list
is OR-ed; ``type: string`` compiles every value as a Go regular expression and
*searches* for it (unanchored); ``type: number`` parses both sides as floats and
applies ``comparator``; ``type: bool`` compares with ``strconv.ParseBool``. So
string values are escaped and anchored here, and each manifest op becomes:

=======  ==============================================================================
op       data filter
=======  ==============================================================================
eq       string ``^v$``; number ``=``; bool equal
ne       string ``^v$`` with comparator ``!=``; number ``!=``; bool: the other value
in       one filter, values OR-ed: all numbers → number ``=``; all booleans → bool;
         otherwise strings ``^v$`` (numbers written as JSON text)
prefix   string ``^v`` (v escaped)
exists   string ``.*`` (matches any value, so only "the path exists" is tested)
gt …     number with comparator ``>``, ``>=``, ``<``, ``<=``
=======  ==============================================================================
"""

from __future__ import annotations

from typing import Any

from planner.manifest import EventFilter, render_value

__all__ = ["data_filter", "envelope_filters", "filter_problem", "go_quote_meta", "payload_key"]

# regexp.QuoteMeta escapes exactly these (Go's specialBytes).
_GO_SPECIAL = frozenset("\\.+*?()|[]{}^$")
_COMPARATORS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_SCALAR = (str, int, float, bool)


_GO_ESCAPES = str.maketrans({char: "\\" + char for char in _GO_SPECIAL})


def go_quote_meta(text: str) -> str:
    """Go's ``regexp.QuoteMeta``: the regular expression that matches ``text`` literally."""
    return text.translate(_GO_ESCAPES)  # one C pass (a per-character join was a tenth of a large compile)


def payload_key(path: str) -> str:
    """A manifest payload path as a gjson key into the webhook event (``key`` → ``body.data.key``)."""
    return f"body.data.{path}"


def _exactly(value: Any) -> str:
    return f"^{go_quote_meta(render_value(value))}$"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _string(path: str, values: list[str], comparator: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"path": path, "type": "string", "value": values}
    if comparator:
        result["comparator"] = comparator
    return result


def _number(path: str, values: list[Any], comparator: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"path": path, "type": "number", "value": [render_value(v) for v in values]}
    if comparator:
        result["comparator"] = comparator
    return result


def _bool(path: str, value: bool) -> dict[str, Any]:
    return {"path": path, "type": "bool", "value": [render_value(value)]}


def filter_problem(flt: EventFilter) -> str | None:
    """Why ``flt`` has no faithful Argo Events data filter, or None (the loader checked the rest)."""
    if flt.op in ("eq", "ne", "prefix") and not isinstance(flt.value, _SCALAR):
        return f"op {flt.op!r} compares a string, number or boolean on Argo Events, not {type(flt.value).__name__}"
    if flt.op == "in" and not flt.value:
        return "op 'in' needs at least one value"
    if flt.op == "in" and not all(isinstance(v, _SCALAR) for v in flt.value):
        return "op 'in' takes a list of strings, numbers or booleans on Argo Events"
    return None


def data_filter(flt: EventFilter) -> dict[str, Any]:
    """The data filter for one manifest filter (see the module docstring for the table)."""
    path = payload_key(flt.path)
    value = flt.value
    if flt.op in ("eq", "ne"):
        negate = flt.op == "ne"
        if isinstance(value, bool):
            return _bool(path, value != negate)
        if _is_number(value):
            return _number(path, [value], "!=" if negate else None)
        return _string(path, [_exactly(value)], "!=" if negate else None)
    if flt.op == "in":
        items = list(value)
        if items and all(_is_number(v) for v in items):
            return _number(path, items)
        if items and all(isinstance(v, bool) for v in items):
            return {"path": path, "type": "bool", "value": [render_value(v) for v in items]}
        return _string(path, [_exactly(v) for v in items])
    if flt.op == "prefix":
        return _string(path, [f"^{go_quote_meta(render_value(value))}"])
    if flt.op == "exists":
        return _string(path, [".*"])
    return _number(path, [value], _COMPARATORS[flt.op])


def envelope_filters(source: str, type_: str) -> list[dict[str, Any]]:
    """The filters every flowplan event dependency starts with: exactly this source and type."""
    return [_string("body.source", [_exactly(source)]), _string("body.type", [_exactly(type_)])]
