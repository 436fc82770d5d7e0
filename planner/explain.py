"""Plain words for what a plan's changes mean: schedules in words, fire times, runs per day.

A reviewer reading ``spec.schedules[0]: "30 2 * * *" -> "0 4 * * *"`` has to
work out the rest: when does it run next, in which time zone, and does it now
run more often? This module answers from :class:`~planner.contract.ScheduleFacts`
— a schedule's expressions as standard cron (or a rate, or one instant), its
zone and whether it is suspended — which each backend's compiler reads from
its own objects (``Compiler.schedule_facts``), so one set of words and
fire-time rules serves every orchestrator.

Until the plan carries those facts for each change, :func:`schedule_of` reads
them from the bodies the plan holds, the same way the Argo and Step Functions
compilers do (``tests/planner/render/test_explain.py`` keeps the two equal);
it goes once the builder records ``schedule_facts`` of both sides.

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
from datetime import UTC, datetime
from typing import Any

from planner.contract import ScheduleExpression, ScheduleFacts
from planner.errors import FlowplanError
from planner.schedule import describe, next_fire_times, parse_cron, runs_per_day, validate_timezone

#: How many upcoming fire times a schedule explanation lists.
FIRE_TIMES = 3


def parse_now(created_at: str) -> datetime:
    """The plan's ``created_at`` as an aware UTC datetime (the "now" fire times count from)."""
    try:
        return datetime.strptime(created_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        parsed = datetime.fromisoformat(created_at)
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def schedule_of(body: Mapping[str, Any] | None) -> ScheduleFacts | None:
    """The schedule a resource body carries, or None when it carries none (see the module docstring)."""
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
        return ScheduleFacts(
            tuple(_facts(e) for e in expressions), str(spec.get("timezone") or "UTC"), bool(spec.get("suspend", False))
        )
    for candidate in (body, *(v for v in body.values() if isinstance(v, Mapping))):
        expression = candidate.get("ScheduleExpression")
        if isinstance(expression, str) and expression.strip():
            state = str(candidate.get("State", "ENABLED")).upper()
            zone = str(candidate.get("ScheduleExpressionTimezone") or "UTC")
            return ScheduleFacts((_facts(expression.strip()),), zone, state == "DISABLED")
    return None


def _facts(expression: str) -> ScheduleExpression:
    cron = _standard(expression)
    if cron is not None:
        return ScheduleExpression(expression, cron=cron)
    rate = _RATE.fullmatch(expression.strip())
    if rate is not None and int(rate.group(1)) > 0:
        return ScheduleExpression(expression, every=(int(rate.group(1)), rate.group(2).lower().rstrip("s")))
    at = _AT.fullmatch(expression.strip())
    return ScheduleExpression(expression, once_at=at.group(1) if at is not None else None)


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


def _standard(expression: str) -> str | None:
    if expression.strip().lower().startswith("cron("):
        return aws_to_standard(expression)
    try:
        return parse_cron(expression).text
    except FlowplanError:
        return None


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
