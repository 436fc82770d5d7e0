"""Human text, terraform-like: ``+ ~ - -/+`` with field-level old → new values and a summary line."""

from __future__ import annotations

from typing import Any

from planner.explain import fire_time_text, rate_text
from planner.plan import Plan
from planner.render.common import (
    SYMBOLS,
    VERBS,
    diff_lines,
    first_leaves,
    fmt,
    friendly,
    managers_text,
    sorted_changes,
    summary_line,
    why,
)
from planner.render.escape import escape_values
from planner.render.json import display_bodies, plan_view

_COLOURS = {"+": "32", "~": "33", "-": "31", "-/+": "35", "<=": "36", "!": "31;1", "bold": "1", "dim": "2"}
#: How many fields of a new object the text output lists before summarising the rest.
CREATE_FIELDS = 40


class _Paint:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, style: str) -> str:
        code = _COLOURS.get(style)
        if not self.color or code is None:
            return text
        return f"\x1b[{code}m{text}\x1b[0m"


def render_text(plan: Plan, *, color: bool = False, create_fields: int = CREATE_FIELDS) -> str:
    view = plan_view(plan)
    if create_fields:
        afters = display_bodies(plan)
        for change in view["changes"]:
            if change["action"] == "create":
                change["after"] = afters.get(change["address"])
    return render_text_view(view, color=color, create_fields=create_fields)


def render_text_view(view: dict[str, Any], *, color: bool = False, create_fields: int = CREATE_FIELDS) -> str:
    view = escape_values(view)  # invisible and control characters shown as escapes, before colour is added
    paint = _Paint(color)
    inputs = view["inputs"]
    out: list[str] = []
    where = ", ".join(f"{name} ({target})" for name, target in sorted(view.get("backend_targets", {}).items()))
    header = f"flowplan plan for project {inputs['project']}, branch {inputs['branch']}"
    if inputs.get("mode") == "destroy":
        header += " (destroy)"
    out.append(paint(header, "bold"))
    if where:
        out.append(paint(f"backends: {where}", "dim"))
    out.append("")
    for warning in view.get("warnings", []):
        out.append(paint("Warning: ", "!") + warning)
        out.append("")
    if view["conflicts"]:
        out.append(
            paint("Conflicts (names taken by objects flowplan does not own here; they will not be touched):", "!")
        )
        for conflict in view["conflicts"]:
            out.append(f"  ! {conflict['address']}: {conflict['detail']}")
        out.append("")
    drifted = [c for c in view["changes"] if c["drifted"]]
    if drifted:
        out.append(paint("Changed outside flowplan (drift):", "bold"))
        for change in sorted_changes({"changes": drifted}):
            extra = managers_text(change)
            out.append(f"  {change['address']}: {why(change)}" + (f" ({extra})" if extra else ""))
        out.append("")
    changes = sorted_changes(view)
    if not changes:
        if view["conflicts"]:
            out.append("No changes to apply, but the conflicts above need attention.")
        else:
            out.append(paint("No changes.", "bold") + " The deployed state matches the manifest.")
        if view.get("ignored_differences"):
            out.append(f"{view['ignored_differences']} difference(s) ignored by ignore_changes.")
        return "\n".join(out) + "\n"
    out.append("flowplan will perform the following actions:")
    out.append("")
    for change in changes:
        # One string per change (the same text): 30,000 creates are a million lines otherwise.
        block: list[str] = []
        symbol = SYMBOLS[change["action"]]
        reason = why(change)
        block.append(
            paint(f"  # {change['address']} {VERBS[change['action']]}", "bold") + (f" ({reason})" if reason else "")
        )
        block.append(paint(f"  {symbol} {change['address']}", symbol))
        for note in change.get("notes", []):
            block.append(paint(f"      note: {note}", "dim"))
        if change["action"] in ("update", "replace", "adopt", "move"):
            for sign, text in diff_lines(change):
                block.append(paint(f"      {sign} {text}", sign))
        elif change["action"] == "create" and change.get("after") is not None:
            for line in render_body_fields(change["after"], create_fields):
                block.append(paint(f"      + {line}", "+"))
        for line in meaning_lines(change, view):
            block.append(paint(f"      {line}", "dim"))
        block.append("")
        out.append("\n".join(block))
    out.append(paint(summary_line(view["summary"]), "bold"))
    if view.get("ignored_differences"):
        out.append(f"{view['ignored_differences']} difference(s) ignored by ignore_changes.")
    return "\n".join(out) + "\n"


def meaning_lines(change: dict[str, Any], view: dict[str, Any]) -> list[str]:
    """What a change means, in words: its schedule before -> after, and the flows a shared object reaches."""
    lines = []
    schedule = change.get("schedule")
    if schedule:
        before, after = schedule.get("before"), schedule.get("after")
        lines.append(f"schedule: {_schedule_words(before)} -> {_schedule_words(after)}")
        runs = f"runs: {_runs(before)} -> {_runs(after)}"
        if after and after.get("next_fire_times"):
            runs += "; next: " + ", ".join(fire_time_text(t, after["timezone"]) for t in after["next_fire_times"])
        lines.append(runs)
    flows = view.get("affected_flows", {}).get(change["address"], [])
    own = change.get("flow")
    if flows and not (own and set(flows) <= {own}):
        lines.append("shared: reaches flow(s) " + ", ".join(flows))
    return lines


def _schedule_words(side: dict[str, Any] | None) -> str:
    if side is None:
        return "(none)"
    text = f"{side['words']} ({', '.join(side['expressions'])}, {side['timezone']})"
    return text + (" suspended" if side["suspended"] else "")


def _runs(side: dict[str, Any] | None) -> str:
    if side is None:
        return "0"
    return "0 (suspended)" if side["suspended"] else rate_text(side["runs_per_day"])


def render_body_fields(body: dict[str, Any], limit: int = CREATE_FIELDS) -> list[str]:
    """The leaves of a body as ``pointer: value`` lines (used by ``show`` for creates)."""
    pairs, total = first_leaves(body, limit)
    lines = [f"{friendly(p)}: {fmt(v)}" for p, v in pairs]
    if total > limit:
        lines.append(f"... and {total - limit} more fields")
    return lines
