"""The JSON form of a plan (documented in docs/plan-json.md, schema in docs/schemas/plan.schema.json)."""

from __future__ import annotations

import copy
import json
from typing import Any

from planner.explain import parse_now, schedule_change
from planner.plan import SENSITIVE, Plan, redact_values
from planner.render.escape import escape_invisible
from planner.resources import has_pointer, set_pointer, without


def plan_view(plan: Plan) -> dict[str, Any]:
    """The redacted, JSON-ready dict every renderer starts from.

    It is :meth:`Plan.to_json` (redacted, no bodies) plus what a reader should
    not have to work out: for a change that adds, removes or alters a schedule,
    ``schedule`` holds both sides in words, with the next fire times (counted
    from the plan's ``created_at``, so the same plan always renders the same)
    and runs per day. The plan records each side's schedule facts (read by the
    backend's compiler); the words are computed here, so saved plans stay what
    was planned.
    """
    view = plan.to_json(redact=True, bodies=False)
    now = parse_now(plan.created_at)
    raw = {str(c.address): c for c in plan.changes}
    for change in view["changes"]:
        source = raw.get(change["address"])
        if source is None:
            continue
        schedule = schedule_change(source.schedule_before, source.schedule_after, now)
        if schedule is not None:
            change["schedule"] = redact_values(schedule, plan.sensitive_values)
    return view


def display_bodies(plan: Plan) -> dict[str, Any]:
    """Desired bodies without volatile markers, redacted: what a create will write, for people."""
    bodies = {str(c.address): without(c.after, c.volatile_paths) for c in plan.changes if c.after is not None}
    for change in plan.changes:
        if change.after is not None and change.sensitive_paths:
            # without() shares what it does not remove with the plan's body: copy before masking
            body = bodies[str(change.address)] = copy.deepcopy(bodies[str(change.address)])
            for pointer in change.sensitive_paths:
                if has_pointer(body, pointer):
                    set_pointer(body, pointer, SENSITIVE)
    return redact_values(bodies, plan.sensitive_values)  # type: ignore[no-any-return]


def render_json(plan: Plan) -> str:
    text = json.dumps(plan_view(plan), indent=2, sort_keys=True, ensure_ascii=False)
    return escape_invisible(text) + "\n"  # a \uXXXX escape is valid JSON with the same value
