"""Standard cron to AWS EventBridge (Scheduler) cron, exactly equivalent or refused, and back.

AWS cron has six fields (``min hour dom month dow year``) and differs from standard cron
where it matters:

* day-of-week counts 1-7 from Sunday (standard: 0-7, 0 and 7 = Sunday) and takes no
  steps, so the field is always written out as day names (``MON-FRI``, ``SUN,SAT``);
* one of day-of-month / day-of-week must be ``?``, and AWS has no "either" rule: a
  standard cron restricting both days cannot be expressed and is refused;
* the other fields share their ranges and ``*``, ``a-b``, ``a/n``, ``a-b/n`` semantics
  with standard cron, so the user's tokens are kept; only a list that mixes steps with
  other items is spelled out value by value (AWS documents steps, not steps in lists),
  and month names next to a step become numbers (Quartz ignores a step after a name).

The way back (:func:`aws_to_standard`) serves the plan's explanations: a
Scheduler schedule or a scheduled rule is read into
:class:`~planner.contract.ScheduleFacts` (:func:`schedule_facts`), with AWS
cron as standard cron, so the core explains AWS and Argo schedules with one
set of words and fire-time rules. What has no standard form (``L``, ``W``,
``#``, a year) is left as written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from planner.contract import ScheduleExpression, ScheduleFacts
from planner.errors import FlowplanError
from planner.schedule import CronError, CronExpr, consecutive_runs, parse_cron

__all__ = ["AwsCronError", "aws_to_standard", "schedule_facts", "to_aws_cron"]

# AWS numbers days 1 (SUN) to 7 (SAT); standard day d (0 = Sunday) is _AWS_DAYS[d].
_AWS_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_DAY_NUMBERS = {name: number for number, name in enumerate(_AWS_DAYS)}
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


class AwsCronError(CronError):
    """A valid standard cron that AWS cron cannot express."""


def to_aws_cron(expr: CronExpr | str) -> str:
    """The ``cron(min hour dom month dow year)`` string firing exactly when ``expr`` fires (in one zone).

    Raises AwsCronError when both day fields are restricted, CronError when ``expr`` is not
    valid standard cron.
    """
    cron = parse_cron(expr) if isinstance(expr, str) else expr
    day_of_month, day_of_week = _day_fields(cron)
    minute, hour, _, month, _ = cron.fields
    fields = (
        _keep_or_list(minute, cron.minutes),
        _keep_or_list(hour, cron.hours),
        day_of_month,
        _keep_or_list(_month_token(month), cron.months),
        day_of_week,
        "*",
    )
    return f"cron({' '.join(fields)})"


def _day_fields(cron: CronExpr) -> tuple[str, str]:
    """Day-of-month and day-of-week for AWS: exactly one of them is ``?``."""
    if cron.dom_restricted and cron.dow_restricted:
        raise AwsCronError(
            cron.text,
            "restricts both day-of-month and day-of-week, which standard cron reads as "
            "'either day matches'; AWS cron cannot express 'either'",
            hint=(
                f"split it into two schedules: one with day-of-week * "
                f'("{_with_days(cron, cron.fields[2], "*")}") and one with day-of-month * '
                f'("{_with_days(cron, "*", cron.fields[4])}"); a day matching both then fires twice'
            ),
        )
    if cron.dow_restricted and len(cron.days_of_week) < 7:
        return "?", _aws_days(cron.days_of_week)
    return _keep_or_list(cron.fields[2], cron.days_of_month), "?"


def _with_days(cron: CronExpr, day_of_month: str, day_of_week: str) -> str:
    minute, hour, _, month, _ = cron.fields
    return f"{minute} {hour} {day_of_month} {month} {day_of_week}"


def _aws_days(days: tuple[int, ...]) -> str:
    """Day names in AWS order (SUN first); runs of three or more become ``MON-FRI``.

    Names avoid the 0-vs-1 numbering trap for anyone reading the AWS console, and no
    range can wrap because SUN opens the AWS week.
    """
    return ",".join(
        f"{_AWS_DAYS[run[0]]}-{_AWS_DAYS[run[-1]]}" if len(run) >= 3 else ",".join(_AWS_DAYS[d] for d in run)
        for run in consecutive_runs(sorted(days))
    )


def _month_token(text: str) -> str:
    """Month names upper-cased; next to a step they become numbers.

    Quartz, which AWS cron follows, reads a name and ignores a ``/step`` after it, so
    ``JAN-JUN/2`` is sent as ``1-6/2``.
    """
    if "/" not in text:
        return text.upper()
    return re.sub("[A-Za-z]{3}", lambda name: str(_MONTHS.index(name.group().upper()) + 1), text)


def _keep_or_list(text: str, values: tuple[int, ...]) -> str:
    """The user's token when AWS reads it the same way, else the values written out."""
    if "," in text and "/" in text:
        return ",".join(
            f"{run[0]}-{run[-1]}" if len(run) >= 3 else ",".join(map(str, run))
            for run in consecutive_runs(list(values))
        )
    return text


# --------------------------------------------------------------------------- the way back, for explanations

_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)", re.IGNORECASE)
_AT = re.compile(r"at\(\s*([0-9T:\-]+)\s*\)", re.IGNORECASE)


def schedule_facts(body: Mapping[str, Any] | None) -> ScheduleFacts | None:
    """The schedule a Scheduler schedule or an EventBridge rule carries (None for an event-pattern rule).

    The expression sits at the top of the body, or one level down where a body wraps the AWS object.
    """
    if not isinstance(body, Mapping):
        return None
    for candidate in (body, *(v for v in body.values() if isinstance(v, Mapping))):
        expression = candidate.get("ScheduleExpression")
        if isinstance(expression, str) and expression.strip():
            state = str(candidate.get("State", "ENABLED")).upper()
            zone = str(candidate.get("ScheduleExpressionTimezone") or "UTC")
            return ScheduleFacts((_expression(expression.strip()),), zone, state == "DISABLED")
    return None


def _expression(written: str) -> ScheduleExpression:
    if written.lower().startswith("cron("):
        return ScheduleExpression(written, cron=aws_to_standard(written))
    rate = _RATE.fullmatch(written)
    if rate is not None and int(rate.group(1)) > 0:
        return ScheduleExpression(written, every=(int(rate.group(1)), rate.group(2).lower().rstrip("s")))
    at = _AT.fullmatch(written)
    return ScheduleExpression(written, once_at=at.group(1) if at is not None else None)


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
            if bound in _DAY_NUMBERS:
                numbers.append(_DAY_NUMBERS[bound])
            elif bound.isdigit() and 1 <= int(bound) <= 7:
                numbers.append(int(bound) - 1)
            else:
                return None
        items.append("-".join(str(n) for n in numbers))
    return ",".join(items)
