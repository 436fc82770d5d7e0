"""Schedules, named (``schedules:``) or a flow's own, and the durations schedules and steps give.

A schedule is refused here rather than by the orchestrator: its cron in the
dialect every backend accepts, and a time zone the backends know.
"""

from __future__ import annotations

from typing import Any

from planner import schedule as cronlib
from planner.errors import FlowplanError
from planner.manifest import model as m
from planner.manifest.context import Context, as_str
from planner.manifest.units import UnitError, duration_seconds
from planner.manifest.yamlsource import PathT


def build_schedule(ctx: Context, spec: dict[str, Any], path: PathT, name: str | None) -> m.Schedule | None:
    """The schedule (``name`` None for a flow's inline one), or None when it would not fire as written."""
    cron = spec.get("cron")
    every = spec.get("every")
    if cron is not None and every is not None:
        ctx.error(path, "give either cron or every, not both")
        return None
    if cron is None and every is None:
        ctx.error(path, "a schedule needs cron (for example '0 2 * * *') or every (hourly, daily, weekly)")
        return None
    ok = True
    if isinstance(every, str):
        try:
            cron = cronlib.every_to_cron(every)
        except FlowplanError:
            return None  # the schema reported the bad value
    if not isinstance(cron, str):
        return None
    try:
        cronlib.parse_cron(cron)
    except FlowplanError as exc:
        ctx.error((*path, "cron"), exc.message, exc.hint)
        ok = False
    timezone = as_str(spec.get("timezone"), "UTC") or "UTC"
    if spec.get("timezone") == "":
        # most often a var that rendered empty: silently meaning UTC would move the schedule
        ctx.error(
            (*path, "timezone"),
            "the time zone is empty",
            "leave timezone out for UTC, or check the var that fills it",
        )
        ok = False
    try:
        cronlib.validate_timezone(timezone)
    except FlowplanError as exc:
        ctx.error((*path, "timezone"), exc.message, exc.hint)
        ok = False
    deadline = duration(ctx, spec.get("starting_deadline"), (*path, "starting_deadline"))
    if not ok:
        return None
    return m.Schedule(
        name=name,
        cron=cron,
        timezone=timezone,
        concurrency=spec.get("concurrency", "allow")
        if spec.get("concurrency") in ("allow", "forbid", "replace")
        else "allow",
        suspend=spec.get("suspend") is True,
        starting_deadline=deadline,
        every=every if isinstance(every, str) else None,
        description=as_str(spec.get("description")),
        loc=ctx.loc(path),
    )


def duration(ctx: Context, value: Any, path: PathT) -> int | None:
    """Seconds of a duration (``90``, ``"15m"``); None when absent, or wrong and reported."""
    if value is None or isinstance(value, bool) or not isinstance(value, str | int):
        return None
    try:
        return duration_seconds(value)
    except UnitError as exc:
        ctx.error(path, str(exc))
        return None
