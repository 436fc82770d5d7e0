"""Markdown for pull-request comments, from a jinja2 template.

The hidden marker line on top lets CI find and update its previous comment
instead of adding a new one on every push.
"""

from __future__ import annotations

import functools
from typing import Any

import jinja2

from planner.plan import Plan
from planner.render.common import (
    SYMBOLS,
    diff_lines,
    fmt,
    friendly,
    leaves,
    managers_text,
    sorted_changes,
    summary_line,
    why,
)
from planner.render.json import display_bodies, plan_view

#: How many lines of a new object's fields a details block shows.
CREATE_LINES = 60


@functools.lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("planner.render", "templates"),
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template("plan.md.j2")


def comment_marker(view: dict[str, Any]) -> str:
    inputs = view["inputs"]
    return f"<!-- flowplan-plan: {inputs['project']}/{inputs['branch']} -->"


def _detail_lines(change: dict[str, Any], body: dict[str, Any] | None) -> list[str]:
    if change["action"] == "create" and body is not None:
        pairs = leaves(body)
        lines = [f"+ {friendly(p)}: {fmt(v)}" for p, v in pairs[:CREATE_LINES]]
        if len(pairs) > CREATE_LINES:
            lines.append(f"  ... {len(pairs) - CREATE_LINES} more fields")
        return lines
    if change["action"] == "delete":
        return [f"- {change['address']}"]
    out = []
    for sign, text in diff_lines(change):
        if sign == "~":
            path, _, rest = text.partition(": ")
            before, _, after = rest.partition(" -> ")
            out.append(f"- {path}: {before}")
            out.append(f"+ {path}: {after}")
        else:
            out.append(f"{sign} {text}")
    return out


def render_markdown(plan: Plan) -> str:
    return render_markdown_view(plan_view(plan), display_bodies(plan))


def render_markdown_view(view: dict[str, Any], bodies: dict[str, Any] | None = None) -> str:
    bodies = bodies or {}
    changes = []
    for c in sorted_changes(view):
        changes.append(
            {
                "address": c["address"],
                "action": c["action"],
                "symbol": SYMBOLS[c["action"]],
                "flow": c["flow"],
                "why": why(c).replace("|", "\\|"),
                "notes": c.get("notes", []),
                "lines": _detail_lines(c, bodies.get(c["address"])),
                "reason": c.get("reason") or "",
            }
        )
    drifted = [
        {"address": c["address"], "why": why(c), "who": managers_text(c)} for c in sorted_changes(view) if c["drifted"]
    ]
    return _template().render(
        marker=comment_marker(view),
        inputs=view["inputs"],
        summary=view["summary"],
        summary_line=summary_line(view["summary"]),
        destroys=[c for c in changes if c["action"] == "delete"],
        replaces=[c for c in changes if c["action"] == "replace"],
        warnings=view.get("warnings", []),
        conflicts=view["conflicts"],
        drifted=drifted,
        changes=changes,
        ignored=view.get("ignored_differences", 0),
    )
