"""Standard cron as Argo's CronWorkflow accepts it.

Argo parses schedules with robfig/cron (``ParseStandard``), which reads the
manifest's strict standard cron the same way (see :mod:`planner.schedule`)
except for one thing: its day-of-week field ends at 6, so ``7`` (Sunday, as
standard cron and croniter allow) is rejected when the CronWorkflow is created.
Only a day-of-week field that names 7 as a value or range bound is rewritten,
from the parsed day set; every other expression is passed through as written,
so people recognise their schedule in the cluster.

:func:`schedule_facts` reads a CronWorkflow's schedule back for the plan's
explanations: its expressions are standard cron already.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from planner.contract import ScheduleExpression, ScheduleFacts
from planner.errors import FlowplanError
from planner.schedule import consecutive_runs, parse_cron

__all__ = ["argo_cron", "schedule_facts"]

_ITEM = re.compile(r"(?P<start>\*|[0-9A-Za-z]+)(?:-(?P<end>[0-9A-Za-z]+))?(?:/(?P<step>[0-9A-Za-z]+))?")


def argo_cron(expression: str) -> str:
    """``expression`` unchanged, or with its day-of-week field rewritten without 7 (same fire times)."""
    cron = parse_cron(expression)
    minute, hour, day_of_month, month, day_of_week = cron.fields
    if not _names_seven(day_of_week):
        return cron.text
    return " ".join((minute, hour, day_of_month, month, _day_list(cron.days_of_week)))


def _names_seven(field: str) -> bool:
    """Whether a value or range bound of the day-of-week field is 7 (a step of 7 is fine for robfig)."""
    for item in field.split(","):
        match = _ITEM.fullmatch(item)
        if match is None:
            continue
        for bound in (match.group("start"), match.group("end")):
            if bound is not None and bound.isdigit() and int(bound) == 7:
                return True
    return False


def _day_list(days: tuple[int, ...]) -> str:
    """Days 0-6 as a list of values and ascending ranges (``0,5-6``), which robfig reads like cron.

    The result is never ``*``, so a restricted field stays restricted (the
    day-of-month/day-of-week OR rule depends on that).
    """
    return ",".join(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]) for run in consecutive_runs(sorted(days)))


def schedule_facts(body: Mapping[str, Any] | None) -> ScheduleFacts | None:
    """A CronWorkflow's ``spec.schedules`` (or the older ``spec.schedule``), ``spec.timezone`` and ``spec.suspend``."""
    if not isinstance(body, Mapping) or body.get("kind") != "CronWorkflow" or not isinstance(body.get("spec"), Mapping):
        return None
    spec = body["spec"]
    raw = spec.get("schedules")
    if raw is None and spec.get("schedule"):
        raw = [spec["schedule"]]
    written = tuple(str(e) for e in (raw or []) if str(e).strip())
    if not written:
        return None
    expressions = tuple(ScheduleExpression(text, cron=_standard(text)) for text in written)
    return ScheduleFacts(expressions, str(spec.get("timezone") or "UTC"), bool(spec.get("suspend", False)))


def _standard(expression: str) -> str | None:
    try:
        return parse_cron(expression).text
    except FlowplanError:
        return None
