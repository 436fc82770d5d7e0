"""``events:`` → :class:`~planner.manifest.model.Event`: what a flow's ``event:`` trigger waits for."""

from __future__ import annotations

import re
from typing import Any

from planner.manifest import model as m
from planner.manifest.context import Context, as_dict, as_list, as_str
from planner.manifest.yamlsource import PathT


def build_event(ctx: Context, name: str, spec: dict[str, Any]) -> m.Event:
    """The event, its filters checked so that every backend can express them (a dotted path, a fitting value)."""
    path: PathT = ("events", name)
    filters = []
    for i, item in enumerate(as_list(spec.get("filters"))):
        item = as_dict(item)
        op = item.get("op", "eq")
        fpath = as_str(item.get("path"), "") or ""
        if fpath and not re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", fpath):
            ctx.error(
                (*path, "filters", i, "path"),
                f"{fpath!r} is not a dotted payload path",
                "for example bucket.name",
            )
        if op != "exists" and "value" not in item:
            ctx.error((*path, "filters", i), f"filter op {op!r} needs a value")
        if op == "in" and not isinstance(item.get("value"), list):
            ctx.error((*path, "filters", i, "value"), "op 'in' needs a list of values")
        if op in ("gt", "gte", "lt", "lte") and not isinstance(item.get("value"), int | float):
            ctx.error((*path, "filters", i, "value"), f"op {op!r} compares numbers; give a number")
        filters.append(m.EventFilter(fpath, str(op), item.get("value"), ctx.loc((*path, "filters", i))))
    params = {str(k): str(v) for k, v in as_dict(spec.get("parameters")).items()}
    return m.Event(
        name,
        as_str(spec.get("source"), "") or "",
        as_str(spec.get("type"), "") or "",
        tuple(filters),
        params,
        as_str(spec.get("description")),
        ctx.loc(path),
    )
