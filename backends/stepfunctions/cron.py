"""Standard cron to AWS EventBridge (Scheduler) cron, exactly equivalent or refused.

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
"""

from __future__ import annotations

import re

from planner.schedule import CronError, CronExpr, consecutive_runs, parse_cron

__all__ = ["AwsCronError", "to_aws_cron"]

# AWS numbers days 1 (SUN) to 7 (SAT); standard day d (0 = Sunday) is _AWS_DAYS[d].
_AWS_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
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
