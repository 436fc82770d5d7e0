"""Plain words for what a plan's changes mean: schedules in words, fire times, runs per day.

A reviewer reading ``spec.schedules[0]: "30 2 * * *" -> "0 4 * * *"`` has to
work out the rest: when does it run next, in which time zone, and does it now
run more often? This module answers from :class:`~planner.contract.ScheduleFacts`
— a schedule's expressions as standard cron (or a rate, or one instant), its
zone and whether it is suspended — which each backend's compiler reads from
its own objects (``Compiler.schedule_facts``), so one set of words and
fire-time rules serves every orchestrator.

The builder records the facts of both sides of each change in the plan
(``ResourceChange.schedule_before``/``schedule_after``); nothing here reads an
orchestrator's body.

Everything is pure and deterministic: "now" is passed in (the plan's
``created_at``), so the same plan always explains itself the same way.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import heapq
import zoneinfo
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from planner.contract import ScheduleFacts
from planner.errors import FlowplanError
from planner.schedule import describe, next_fire_times, runs_per_day, validate_timezone

#: How many upcoming fire times a schedule explanation lists.
FIRE_TIMES = 3


def parse_now(created_at: str) -> datetime:
    """The plan's ``created_at`` as an aware UTC datetime (the "now" fire times count from)."""
    try:
        return datetime.strptime(created_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        parsed = datetime.fromisoformat(created_at)
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


#: Minutes in each unit a fixed rate (``every``) may count in.
_MINUTES = {"minute": 1, "hour": 60, "day": 1440}


# --------------------------------------------------------------------------- one side


@functools.lru_cache(maxsize=512)
def _cron_facts(cron: str, timezone: str) -> tuple[str, float]:
    """Words and runs per day of one standard cron in one zone (cached: a plan repeats schedules)."""
    return describe(cron), runs_per_day(cron, timezone)


def explain_schedule(spec: ScheduleFacts, now: datetime) -> dict[str, Any]:
    """One schedule as words, the next fire times in its own zone, and runs per day (see :func:`_explain`).

    Memoised per (schedule, time of the plan): a plan of 10,000 flows shares a few dozen schedules.
    Each caller gets its own copy.
    """
    return copy.deepcopy(_explain(spec, now))


@functools.lru_cache(maxsize=1024)
def _explain(spec: ScheduleFacts, now: datetime) -> dict[str, Any]:
    """One schedule as words, the next fire times in its own zone, and runs per day.

    ``runs_per_day`` is what actually happens: 0 while suspended (the cron's own
    rate is ``cron_runs_per_day``). Unknown parts (an untranslatable AWS
    expression, a ``rate()`` whose phase depends on when it was created, an
    unknown time zone) are None or empty rather than guessed.
    """
    words: list[str] = []
    per_day: float | None = 0.0
    crons: list[str | None] = []
    fire_lists: list[list[datetime]] = []
    problem = None
    try:
        validate_timezone(spec.timezone)
        zone_ok = True
    except FlowplanError as exc:
        zone_ok = False
        problem = exc.message
    for expression in spec.expressions:
        cron = expression.cron
        crons.append(cron)
        if cron is not None and zone_ok:
            text, rate = _cron_facts(cron, spec.timezone)
            words.append(text)
            per_day = None if per_day is None else per_day + rate
            fire_lists.append(next_fire_times(cron, spec.timezone, FIRE_TIMES, after=now))
            continue
        if cron is None and expression.every is not None:
            count, unit = expression.every
            words.append(f"Every {unit}" if count == 1 else f"Every {count} {unit}s")
            per_day = None if per_day is None else per_day + 1440 / (count * _MINUTES[unit])
            continue
        if cron is None and expression.once_at is not None:
            words.append(f"Once, at {expression.once_at}")
            continue
        words.append(f"as written: {expression.written}")
        per_day = None
    fires = _merge(fire_lists)
    result: dict[str, Any] = {
        "expressions": [e.written for e in spec.expressions],
        "cron": crons,
        "timezone": spec.timezone,
        "suspended": spec.suspended,
        "words": "; ".join(words),
        "cron_runs_per_day": None if per_day is None else round(per_day, 4),
        "runs_per_day": 0.0 if spec.suspended else (None if per_day is None else round(per_day, 4)),
        "next_fire_times": [] if spec.suspended else [f.isoformat() for f in fires],
    }
    if problem:
        result["problem"] = problem
    return result


def _merge(lists: Sequence[list[datetime]]) -> list[datetime]:
    """The first FIRE_TIMES instants over several schedules, each instant once."""
    out: list[datetime] = []
    for fire in heapq.merge(*lists):
        if not out or fire != out[-1]:
            out.append(fire)
        if len(out) == FIRE_TIMES:
            break
    return out


# --------------------------------------------------------------------------- a change


def schedule_change(old: ScheduleFacts | None, new: ScheduleFacts | None, now: datetime) -> dict[str, Any] | None:
    """``{"before": side|None, "after": side|None}`` when the schedule differs between two sides, else None.

    A new or removed schedule counts as a difference; a body whose other
    fields change while its schedule stays is not explained (nothing new to say).
    """
    if old is None and new is None:
        return None
    if old == new:
        return None
    return {
        "before": explain_schedule(old, now) if old is not None else None,
        "after": explain_schedule(new, now) if new is not None else None,
    }


def rate_text(per_day: float | None) -> str:
    """Runs per day for people: ``24/day``, ``1/day``, ``1/week``, ``1/month``; ``?`` when unknown."""
    if per_day is None:
        return "?"
    if per_day == 0:
        return "0"
    for factor, unit in ((1, "day"), (7, "week"), (365.25 / 12, "month"), (365.25, "year")):
        value = per_day * factor
        if value >= 0.995 or unit == "year":
            return f"{_number(value)}/{unit}"
    raise AssertionError("unreachable")


def _number(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text or "0"


def fire_time_text(iso: str, timezone: str) -> str:
    """``2026-01-02T04:00:00+01:00`` in Europe/Berlin → ``Fri 2026-01-02 04:00 CET`` (the zone's abbreviation)."""
    moment = datetime.fromisoformat(iso)
    with contextlib.suppress(zoneinfo.ZoneInfoNotFoundError, ValueError):
        moment = moment.astimezone(zoneinfo.ZoneInfo(timezone))
    name = moment.tzname() or ""
    return moment.strftime("%a %Y-%m-%d %H:%M") + (f" {name}" if name else "")
