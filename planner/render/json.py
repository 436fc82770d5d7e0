"""The JSON form of a plan (documented in docs/plan-json.md)."""

from __future__ import annotations

import json
from typing import Any

from planner.plan import SENSITIVE, Plan, redact_values
from planner.resources import has_pointer, set_pointer, without


def plan_view(plan: Plan) -> dict[str, Any]:
    """The redacted, JSON-ready dict every renderer starts from."""
    return plan.to_json(redact=True, bodies=False)


def display_bodies(plan: Plan) -> dict[str, Any]:
    """Desired bodies without volatile markers, redacted: what a create will write, for people."""
    bodies = {str(c.address): without(c.after, c.volatile_paths) for c in plan.changes if c.after is not None}
    for change in plan.changes:
        if change.after is not None and change.sensitive_paths:
            body = bodies[str(change.address)]
            for pointer in change.sensitive_paths:
                if has_pointer(body, pointer):
                    set_pointer(body, pointer, SENSITIVE)
    return redact_values(bodies, plan.sensitive_values)  # type: ignore[no-any-return]


def render_json(plan: Plan) -> str:
    return json.dumps(plan_view(plan), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
