"""Plain words for what a plan's changes mean: schedules in words, fire times, runs per day.

A reviewer reading ``spec.schedules[0]: "30 2 * * *" -> "0 4 * * *"`` has to
work out the rest: when does it run next, in which time zone, and does it now
run more often? This module answers from the resource bodies the plan already
holds, for every backend's way of writing a schedule:

- Argo ``CronWorkflow``: ``spec.schedules`` (or the older ``spec.schedule``),
  ``spec.timezone``, ``spec.suspend``;
- AWS (EventBridge Scheduler schedules, EventBridge rules): ``ScheduleExpression``
  (``cron(...)`` in AWS's 6-field dialect, ``rate(...)``, ``at(...)``),
  ``ScheduleExpressionTimezone`` and ``State``. AWS cron is translated back to
  standard cron (the inverse of :func:`backends.stepfunctions.cron.to_aws_cron`)
  so one set of words and fire-time rules serves both; what has no standard
  equivalent (``L``, ``W``, ``#``, a year) is shown as written, without numbers.

Everything is pure and deterministic: "now" is passed in (the plan's
``created_at``), so the same plan always explains itself the same way.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import heapq
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from planner.errors import FlowplanError
from planner.schedule import describe, next_fire_times, parse_cron, runs_per_day, validate_timezone

#: How many upcoming fire times a schedule explanation lists.
FIRE_TIMES = 3


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule as one resource body writes it: expressions, time zone, whether it is paused."""

    expressions: tuple[str, ...]
    timezone: str
    suspended: bool


def parse_now(created_at: str) -> datetime:
    """The plan's ``created_at`` as an aware UTC datetime (the "now" fire times count from)."""
    try:
        return datetime.strptime(created_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        parsed = datetime.fromisoformat(created_at)
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def schedule_of(body: Mapping[str, Any] | None) -> ScheduleSpec | None:
    """The schedule a resource body carries, or None when it carries none."""
    if not isinstance(body, Mapping):
        return None
    if body.get("kind") == "CronWorkflow" and isinstance(body.get("spec"), Mapping):
        spec = body["spec"]
        raw = spec.get("schedules")
        if raw is None and spec.get("schedule"):
            raw = [spec["schedule"]]
        expressions = tuple(str(e) for e in (raw or []) if str(e).strip())
        if not expressions:
            return None
        return ScheduleSpec(expressions, str(spec.get("timezone") or "UTC"), bool(spec.get("suspend", False)))
    for candidate in (body, *(v for v in body.values() if isinstance(v, Mapping))):
        expression = candidate.get("ScheduleExpression")
        if isinstance(expression, str) and expression.strip():
            state = str(candidate.get("State", "ENABLED")).upper()
            zone = str(candidate.get("ScheduleExpressionTimezone") or "UTC")
            return ScheduleSpec((expression.strip(),), zone, state == "DISABLED")
    return None


# --------------------------------------------------------------------------- AWS expressions

_AWS_DAYS = {"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}
_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)", re.IGNORECASE)
_AT = re.compile(r"at\(\s*([0-9T:\-]+)\s*\)", re.IGNORECASE)
_MINUTES = {"minute": 1, "hour": 60, "day": 1440}


def aws_to_standard(expression: str) -> str | None:
    """``cron(m h dom mon dow year)`` → the standard 5-field cron firing at the same times, or None.

    AWS numbers days 1 (SUN) to 7 (SAT) and writes ``?`` for the unused day
    field; standard cron numbers 0 (SUN) to 6 and writes ``*``. ``L``, ``W``,
    ``#`` and a restricted year have no standard form: None.
    """
    match = re.fullmatch(r"cron\((.*)\)", expression.strip(), re.IGNORECASE)
    if match is None:
        return None
    fields = match.group(1).split()
    if len(fields) != 6 or fields[5] not in ("*", "?"):
        return None
    minute, hour, dom, month, dow = fields[:5]
    if any(mark in f.upper() for f in (dom, dow) for mark in ("L", "W", "#")) and not _only_day_names(dow):
        return None
    dom = "*" if dom == "?" else dom
    dow = "*" if dow == "?" else _standard_days(dow)
    if dow is None:
        return None
    text = f"{minute} {hour} {dom} {month} {dow}"
    try:
        parse_cron(text)
    except FlowplanError:
        return None
    return text


def _only_day_names(field: str) -> bool:
    """True when the letters in a day-of-week field are only day names (``WED`` holds a W)."""
    stripped = field.upper()
    for name in _AWS_DAYS:
        stripped = stripped.replace(name, "")
    return not any(mark in stripped for mark in ("L", "W", "#"))


def _standard_days(field: str) -> str | None:
    """AWS day-of-week items (names, 1-7, ranges) → standard numbers 0-6; steps are not AWS."""
    if field == "*":
        return "*"
    items = []
    for item in field.upper().split(","):
        bounds = item.split("-")
        if len(bounds) > 2 or "/" in item:
            return None
        numbers = []
        for bound in bounds:
            if bound in _AWS_DAYS:
                numbers.append(_AWS_DAYS[bound])
            elif bound.isdigit() and 1 <= int(bound) <= 7:
                numbers.append(int(bound) - 1)
            else:
                return None
        items.append("-".join(str(n) for n in numbers))
    return ",".join(items)


def _rate_per_day(expression: str) -> float | None:
    match = _RATE.fullmatch(expression.strip())
    if match is None:
        return None
    unit = match.group(2).lower().rstrip("s")
    minutes = int(match.group(1)) * _MINUTES[unit]
    return 1440 / minutes if minutes else None


# --------------------------------------------------------------------------- one side


@functools.lru_cache(maxsize=512)
def _cron_facts(cron: str, timezone: str) -> tuple[str, float]:
    """Words and runs per day of one standard cron in one zone (cached: a plan repeats schedules)."""
    return describe(cron), runs_per_day(cron, timezone)


def explain_schedule(spec: ScheduleSpec, now: datetime) -> dict[str, Any]:
    """One schedule as words, the next fire times in its own zone, and runs per day (see :func:`_explain`).

    Memoised per (schedule, time of the plan): a plan of 10,000 flows on 20 shared schedules explained
    each of them 10,000 times (issue 12). Each caller gets its own copy.
    """
    return copy.deepcopy(_explain(spec, now))


@functools.lru_cache(maxsize=1024)
def _explain(spec: ScheduleSpec, now: datetime) -> dict[str, Any]:
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
        cron = _standard(expression)
        crons.append(cron)
        if cron is not None and zone_ok:
            text, rate = _cron_facts(cron, spec.timezone)
            words.append(text)
            per_day = None if per_day is None else per_day + rate
            fire_lists.append(next_fire_times(cron, spec.timezone, FIRE_TIMES, after=now))
            continue
        rate_per_day = _rate_per_day(expression)
        if rate_per_day is not None:
            words.append(_rate_words(expression))
            per_day = None if per_day is None else per_day + rate_per_day
            continue
        at = _AT.fullmatch(expression.strip())
        if at is not None:
            words.append(f"Once, at {at.group(1)}")
            continue
        words.append(f"as written: {expression}")
        per_day = None
    fires = _merge(fire_lists)
    result: dict[str, Any] = {
        "expressions": list(spec.expressions),
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


def _standard(expression: str) -> str | None:
    if expression.strip().lower().startswith("cron("):
        return aws_to_standard(expression)
    try:
        return parse_cron(expression).text
    except FlowplanError:
        return None


def _rate_words(expression: str) -> str:
    match = _RATE.fullmatch(expression.strip())
    assert match is not None
    count, unit = int(match.group(1)), match.group(2).lower().rstrip("s")
    return f"Every {unit}" if count == 1 else f"Every {count} {unit}s"


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


def schedule_change(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, now: datetime
) -> dict[str, Any] | None:
    """``{"before": side|None, "after": side|None}`` when the schedule differs between the bodies, else None.

    A new or removed schedule counts as a difference; a body whose other
    fields change while its schedule stays is not explained (nothing new to say).
    """
    old, new = schedule_of(before), schedule_of(after)
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
