"""``moved:`` → :class:`~planner.manifest.model.Moved`: renames the plan turns into moves instead of delete + create.

A flow move names a flow that is gone and one that is declared; a project or
branch move names where the deployment was before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from planner.manifest import model as m
from planner.manifest.context import Context, as_dict, as_list, did_you_mean
from planner.manifest.naming import project_ok


def build_moved(ctx: Context, raw: Any, project: Any, declared_flows: Mapping[str, Any]) -> tuple[m.Moved, ...]:
    """The moves; ``project`` and ``declared_flows`` are what a move must end in."""
    result = []
    for i, item in enumerate(as_list(raw)):
        item = as_dict(item)
        source, target = item.get("from"), item.get("to")
        if not isinstance(source, str) or not isinstance(target, str):
            continue  # the structural check reported it
        kind = item.get("kind", "flow")
        if kind in ("project", "branch"):
            if not project_ok(source):
                ctx.error(("moved", i, "from"), f"{source!r} is not a valid {kind} name")
            if kind == "project" and target != project:
                ctx.error(("moved", i, "to"), f"a project move must end in this project ({project!r})")
            result.append(m.Moved(source, target, ctx.loc(("moved", i)), kind))
            continue
        if target not in declared_flows:
            ctx.error(("moved", i, "to"), f"unknown flow {target!r}", did_you_mean(target, declared_flows))
        if source in declared_flows:
            ctx.error(("moved", i, "from"), f"flow {source!r} is still declared; a move needs the old name gone")
        result.append(m.Moved(source, target, ctx.loc(("moved", i))))
    return tuple(result)
