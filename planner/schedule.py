"""Schedules in the manifest: strict standard cron, ``every:`` shorthands, time zones.

The manifest accepts only the 5-field cron that every backend can honour the same way.
croniter, Argo (robfig/cron), Vixie cron and AWS each accept a different superset
(``L``, ``W``, ``#``, ``?``, ``@daily``, seconds, years, day-of-week 7, wrapping ranges)
and disagree on some of it, so anything outside the common core is refused here, with
a message naming the field, the token and what is allowed.

Semantics fixed by this module (croniter and robfig/cron agree on all of them):

* day-of-week 0-7, 0 and 7 = Sunday; ``a/n`` means ``a-<max>/n`` (``1/2`` on
  day-of-week is Mon, Wed, Fri: the maximum is 6, as in croniter and robfig;
  Vixie cron would add Sunday, so ``7/n`` is refused as ambiguous);
* a day field is *restricted* when its text is not exactly ``*``; when both day
  fields are restricted a day matches if *either* matches (the standard rule);
* a restricted day field that still allows every day (``1-31``, ``0-7``, ``*/1``)
  next to a restricted other day field is refused: croniter reads it as "no
  restriction" (AND), Vixie and robfig as "every day" (OR);
* an equal-bound range (``5-5``) is refused: croniter reads it as the whole field.

Fire times follow the wall clock of the schedule's time zone the way EventBridge
Scheduler documents it: a time that falls into a spring-forward gap is skipped,
a time in a repeated (fall-back) hour fires once, at its first occurrence.
(croniter instead moves gap times to the end of the gap and fires repeated times
twice; robfig/cron, used by Argo, skips gap times but fires repeated times twice.)
"""

from __future__ import annotations

import calendar
import difflib
import functools
import re
import zoneinfo
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from cron_descriptor import get_description

from planner.errors import FlowplanError

__all__ = [
    "EVERY_VALUES",
    "REFERENCE_DAYS",
    "REFERENCE_START",
    "CronError",
    "CronExpr",
    "EveryError",
    "ScheduleError",
    "TimezoneError",
    "consecutive_runs",
    "describe",
    "every_to_cron",
    "next_fire_times",
    "parse_cron",
    "runs_per_day",
    "validate_every",
    "validate_timezone",
]


class ScheduleError(FlowplanError):
    """A schedule in the manifest is unusable; the manifest layer turns it into a Problem."""


class CronError(ScheduleError):
    """A cron expression is outside the strict standard grammar, or can never fire."""

    def __init__(
        self,
        expression: str,
        detail: str,
        *,
        field: str | None = None,
        token: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(f'cron "{expression}": {detail}', hint=hint)
        self.expression = expression
        self.field = field
        self.token = token


class TimezoneError(ScheduleError):
    """A time zone is not a known IANA name."""


class EveryError(ScheduleError):
    """An ``every:`` shorthand is not one of the supported values."""


# --------------------------------------------------------------------------- fields


@dataclass(frozen=True)
class _Field:
    """How one cron field is read; ``high`` is the largest value *written* (7 for day-of-week)."""

    name: str
    low: int
    high: int
    allowed: str
    names: Mapping[str, int]

    @property
    def span(self) -> int:
        """How many distinct values the field has (7 for day-of-week: 7 is Sunday again)."""
        return self.high - self.low + 1 - (1 if self.name == "day-of-week" else 0)


_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")

_FIELDS = (
    _Field("minute", 0, 59, "values are 0-59", {}),
    _Field("hour", 0, 23, "values are 0-23", {}),
    _Field("day-of-month", 1, 31, "values are 1-31", {}),
    _Field("month", 1, 12, "values are 1-12 or JAN-DEC", {n: i + 1 for i, n in enumerate(_MONTH_NAMES)}),
    _Field(
        "day-of-week",
        0,
        7,
        "values are 0-7 (0 and 7 = Sunday) or SUN-SAT",
        {n: i for i, n in enumerate(_DAY_NAMES)},
    ),
)
_MINUTE, _HOUR, _DOM, _MONTH, _DOW = _FIELDS

_GRAMMAR = (
    "use 5 fields: minute hour day-of-month month day-of-week, each *, a value, a range a-b, "
    "a step */n, a-b/n or a/n, or a comma-separated list of those"
)

# Letters that mark a non-standard extension, with what they mean where they are accepted.
_EXTENSIONS = {
    "L": '"L" (last day) is a Quartz/AWS extension, not standard cron',
    "W": '"W" (nearest weekday) is a Quartz/AWS extension, not standard cron',
    "#": '"#" (nth weekday of the month) is a Quartz/AWS extension, not standard cron',
    "?": '"?" (no specific value) is a Quartz/AWS extension; write *',
    "H": '"H" (hashed value) is a Jenkins extension, not standard cron',
}

_ITEM_RE = re.compile(r"(?P<start>\*|[0-9A-Za-z]+)(?:-(?P<end>[0-9A-Za-z]+))?(?:/(?P<step>[0-9A-Za-z]+))?")
_NUMBER_RE = re.compile(r"[0-9]{1,2}")

# Longest month lengths; February has 29 days in leap years, so Feb 29 can fire.
_MAX_DAYS = {m: (29 if m == 2 else calendar.monthrange(2001, m)[1]) for m in range(1, 13)}


# --------------------------------------------------------------------------- CronExpr


@dataclass(frozen=True)
class CronExpr:
    """A parsed standard cron (make one with ``parse_cron``): the trimmed text, its five
    field texts and, per field, the sorted allowed values.

    Keeping both lets backends reuse the user's tokens where their dialect reads them the
    same way, and fall back to the exact value sets where it does not. The restricted
    flags record whether a day field was written as something other than ``*``: that,
    not the value set, decides the standard "either" rule.
    """

    text: str
    fields: tuple[str, str, str, str, str]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: tuple[int, ...]
    months: tuple[int, ...]
    days_of_week: tuple[int, ...]  # 0-6, 0 = Sunday (7 is folded into 0)
    dom_restricted: bool
    dow_restricted: bool

    def fires_on(self, day: date) -> bool:
        """Whether ``day`` is a firing day, with the standard OR rule for two restricted day fields."""
        if day.month not in self.months:
            return False
        dom_ok = day.day in self.days_of_month
        dow_ok = (day.isoweekday() % 7) in self.days_of_week
        if self.dom_restricted and self.dow_restricted:
            return dom_ok or dow_ok
        return dom_ok and dow_ok


@functools.lru_cache(maxsize=1024)
def parse_cron(expr: str) -> CronExpr:
    """Parse a strict standard 5-field cron expression.

    Raises CronError for anything outside the common core of cron dialects (see the module
    docstring) and for expressions that can never fire (``0 0 30 2 *``).
    """
    text = expr.strip()
    if text.startswith("@"):
        raise CronError(
            text,
            f'macros like "{text.split()[0]}" are not supported',
            token=text.split()[0],
            hint="write the 5 fields (e.g. 0 0 * * * for @daily) or use every: hourly|daily|weekly",
        )
    parts = re.split(r"[ \t]+", text) if text else []
    if len(parts) != 5:
        raise CronError(text, _field_count_detail(len(parts)), hint=_GRAMMAR)
    field_texts = (parts[0], parts[1], parts[2], parts[3], parts[4])
    sets = [_parse_field(text, spec, field_text) for spec, field_text in zip(_FIELDS, field_texts, strict=True)]
    cron = CronExpr(
        text=text,
        fields=field_texts,
        minutes=tuple(sorted(sets[0])),
        hours=tuple(sorted(sets[1])),
        days_of_month=tuple(sorted(sets[2])),
        months=tuple(sorted(sets[3])),
        days_of_week=tuple(sorted({d % 7 for d in sets[4]})),
        dom_restricted=field_texts[2] != "*",
        dow_restricted=field_texts[4] != "*",
    )
    _check_day_fields(cron)
    _check_fireable(cron)
    return cron


def _field_count_detail(count: int) -> str:
    """Explain a wrong field count; 6 and 7 fields are the usual seconds/year dialects."""
    if count in (6, 7):
        return f"has {count} fields; standard cron has exactly 5 (seconds and year fields belong to other dialects)"
    return f"has {count} field{'s' if count != 1 else ''}; standard cron has exactly 5"


def _parse_field(expr: str, spec: _Field, text: str) -> set[int]:
    """All values a field allows (day-of-week keeps 7 here; the caller folds it to 0)."""
    items = text.split(",")
    if "" in items:
        raise _field_error(expr, spec, text, "empty list item (two commas in a row, or a comma at an end)")
    if len(items) > 1 and "*" in items:
        raise _field_error(expr, spec, text, '"*" cannot be part of a list; write * alone')
    values: set[int] = set()
    for item in items:
        values |= _parse_item(expr, spec, item)
    return values


def _parse_item(expr: str, spec: _Field, item: str) -> set[int]:
    """One list item: ``*``, ``v``, ``a-b``, or any of them followed by ``/step``."""
    _reject_extensions(expr, spec, item)
    match = _ITEM_RE.fullmatch(item)
    if match is None:
        raise _field_error(expr, spec, item, f"is not a value, range or step; {spec.allowed}")
    start_text, end_text, step_text = match.group("start", "end", "step")
    step = _parse_step(expr, spec, item, step_text)
    if start_text == "*":
        if end_text is not None:
            raise _field_error(expr, spec, item, f"* cannot start a range; {spec.allowed}")
        return set(range(spec.low, _step_high(spec), step))
    start = _parse_value(expr, spec, item, start_text)
    if end_text is None:
        if step_text is None:
            return {start}
        return _open_step(expr, spec, item, start, step)
    end = _parse_value(expr, spec, item, end_text)
    _check_range(expr, spec, item, start, end)
    return set(range(start, end + 1, step))


def _step_high(spec: _Field) -> int:
    """Exclusive upper bound of ``*`` and ``a/n``: day-of-week stops at 6, as croniter and robfig do."""
    return (6 if spec.name == "day-of-week" else spec.high) + 1


def _open_step(expr: str, spec: _Field, item: str, start: int, step: int) -> set[int]:
    """``a/n``: from ``a`` to the field maximum; ``7/n`` has no agreed meaning, so it is refused."""
    if spec.name == "day-of-week" and start == 7:
        raise _field_error(expr, spec, item, "Sunday as 7 cannot start a step (dialects disagree); write 0/n or */n")
    return set(range(start, _step_high(spec), step))


def _reject_extensions(expr: str, spec: _Field, item: str) -> None:
    """Name the non-standard extension a token uses, instead of a generic syntax error."""
    upper = item.upper()
    for marker, why in _EXTENSIONS.items():
        if marker in upper and not _only_inside_names(spec, upper, marker):
            raise _field_error(expr, spec, item, f"{why}; {spec.allowed}")


def _only_inside_names(spec: _Field, upper: str, marker: str) -> bool:
    """True if ``marker`` only appears inside month/day names (``JUL``, ``WED``, ``THU``)."""
    stripped = upper
    for name in spec.names:
        stripped = stripped.replace(name, "")
    return marker not in stripped


def _parse_step(expr: str, spec: _Field, item: str, step_text: str | None) -> int:
    """A step is a plain number from 1 to the field's span; a larger one only hits its start."""
    if step_text is None:
        return 1
    if not step_text.isdigit() or not 1 <= int(step_text) <= spec.span:
        raise _field_error(expr, spec, item, f"step must be a number from 1 to {spec.span}")
    return int(step_text)


def _parse_value(expr: str, spec: _Field, item: str, text: str) -> int:
    """A number in range, or a three-letter name where the field has names."""
    upper = text.upper()
    if upper in spec.names:
        return spec.names[upper]
    if _NUMBER_RE.fullmatch(text) and spec.low <= int(text) <= spec.high:
        return int(text)
    if text.isalpha() and not spec.names:
        raise _field_error(expr, spec, item, f"names are allowed only in month and day-of-week; {spec.allowed}")
    if text.isalpha():
        raise _field_error(expr, spec, item, f'unknown name "{text}"; {spec.allowed}')
    raise _field_error(expr, spec, item, spec.allowed)


def _check_range(expr: str, spec: _Field, item: str, start: int, end: int) -> None:
    """Ranges must ascend: wrapping ranges and equal bounds mean different things in different crons."""
    if start == end:
        raise _field_error(
            expr,
            spec,
            item,
            f'range with equal bounds (croniter reads it as the whole field); write "{start}"',
        )
    if start > end:
        wrapped = _wrap_hint(spec, start, end)
        raise _field_error(expr, spec, item, f"range start is after its end; ranges do not wrap — {wrapped}")


def _wrap_hint(spec: _Field, start: int, end: int) -> str:
    """Suggest the list that spells out a wrapping range (FRI-MON becomes 5-7,1)."""
    if spec.name == "day-of-week":
        if start == 7:
            return f'write "{_span_text(0, end)}" (0 is Sunday)'
        head = f"{start}-7"
        return f'write "{head}" (7 is Sunday)' if end == 0 else f'write "{head},{_span_text(1, end)}"'
    return f'write "{_span_text(start, spec.high)},{_span_text(spec.low, end)}"'


def _span_text(start: int, end: int) -> str:
    return str(start) if start == end else f"{start}-{end}"


def _check_day_fields(cron: CronExpr) -> None:
    """Refuse a restricted day field that allows every day while the other day field is restricted."""
    if not (cron.dom_restricted and cron.dow_restricted):
        return
    for spec, text, values, size in (
        (_DOM, cron.fields[2], cron.days_of_month, 31),
        (_DOW, cron.fields[4], cron.days_of_week, 7),
    ):
        if len(values) == size:
            raise _field_error(
                cron.text,
                spec,
                text,
                "allows every day while the other day field is restricted; cron dialects disagree on "
                "whether that means every day (either rule) or only the other field's days — write * "
                "for the field you do not mean to restrict",
            )


def _check_fireable(cron: CronExpr) -> None:
    """Decide exactly, from the sets, whether some date can match (Feb 29 counts: leap years)."""
    if not cron.dom_restricted or cron.dow_restricted:
        return  # every month has every weekday, and under the either rule any weekday suffices
    longest = max(_MAX_DAYS[m] for m in cron.months)
    if cron.days_of_month[0] <= longest:
        return
    months = ",".join(_MONTH_NAMES[m - 1] for m in cron.months)
    raise CronError(
        cron.text,
        f"never fires: the earliest day-of-month allowed is {cron.days_of_month[0]}, "
        f"but the longest month allowed ({months}) has {longest} days",
        field="day-of-month",
        token=cron.fields[2],
    )


def _field_error(expr: str, spec: _Field, token: str, problem: str) -> CronError:
    return CronError(expr, f'{spec.name} field "{token}": {problem}', field=spec.name, token=token)


# --------------------------------------------------------------------------- every


EVERY_VALUES: Mapping[str, str] = {
    "hourly": "0 * * * *",
    "daily": "0 0 * * *",
    "weekly": "0 0 * * 0",
}


def validate_every(every: str) -> None:
    """Raise EveryError unless ``every`` is a supported shorthand."""
    if every in EVERY_VALUES:
        return
    close = difflib.get_close_matches(every.lower(), list(EVERY_VALUES), n=1)
    allowed = ", ".join(EVERY_VALUES)
    hint = f'did you mean "{close[0]}"?' if close else "for anything else write a cron expression"
    raise EveryError(f'every: "{every}" is not supported; allowed values are {allowed}', hint=hint)


def every_to_cron(every: str) -> str:
    """The cron for an ``every:`` shorthand: hourly at minute 0, daily at 00:00, weekly Sunday 00:00."""
    validate_every(every)
    return EVERY_VALUES[every]


# --------------------------------------------------------------------------- time zones


_NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})


@functools.lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    """IANA names a scheduler understands; machine-local aliases are left out."""
    return frozenset(
        name
        for name in zoneinfo.available_timezones()
        if name not in _NOT_ZONES and not name.startswith(("posix/", "right/"))
    )


def validate_timezone(name: str) -> None:
    """Raise TimezoneError unless ``name`` is an IANA time zone, suggesting close names."""
    zones = _zone_names()
    if name in zones:
        return
    by_lower = {z.lower(): z for z in zones}
    if name.lower() in by_lower:
        suggestions = [by_lower[name.lower()]]
    else:
        suggestions = [by_lower[z] for z in difflib.get_close_matches(name.lower(), by_lower, n=3)]
    hint = (
        "did you mean " + " or ".join(f'"{s}"' for s in suggestions) + "?"
        if suggestions
        else 'use an IANA name such as "UTC" or "Europe/Berlin"'
    )
    raise TimezoneError(f'time zone "{name}" is not a known IANA time zone', hint=hint)


def _zone(name: str) -> tzinfo:
    validate_timezone(name)
    return zoneinfo.ZoneInfo(name)


# --------------------------------------------------------------------------- fire times

# Firing days of a valid cron are at most 8 years apart (Feb 29 around 2100); search a bit more.
_SEARCH_DAYS = 9 * 366

REFERENCE_START = date(2024, 1, 1)
"""First local day of the span ``runs_per_day`` averages over."""
REFERENCE_DAYS = 1461
"""Length of that span: 2024-2027, one full leap cycle, so Feb 29 and month-restricted
schedules count in their true proportion (a 28-day window would say 0 for ``0 0 1 1 *``)."""


def _as_cron(expr: str | CronExpr) -> CronExpr:
    return expr if isinstance(expr, CronExpr) else parse_cron(expr)


def _localize(wall: datetime, zone: tzinfo) -> datetime | None:
    """The aware instant for a wall-clock time: None inside a DST gap, the first one if repeated."""
    aware = wall.replace(tzinfo=zone, fold=0)
    if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall:
        return None
    return aware


def _fire_times(cron: CronExpr, zone: tzinfo, after: datetime) -> Iterator[datetime]:
    """Fire instants after ``after`` in order (fold=0 wall times ascend with the instants).

    Ends after _SEARCH_DAYS days without a fire, which only a schedule whose every time
    falls into DST gaps could reach.
    """
    after_utc = after.astimezone(UTC)
    day = after.astimezone(zone).date()
    quiet_days = 0
    while quiet_days < _SEARCH_DAYS:
        quiet_days += 1
        if cron.fires_on(day):
            for hour in cron.hours:
                for minute in cron.minutes:
                    local = _localize(datetime.combine(day, time(hour, minute)), zone)
                    if local is not None and local.astimezone(UTC) > after_utc:
                        quiet_days = 0
                        yield local
        day += timedelta(days=1)


def next_fire_times(expr: str | CronExpr, timezone: str, n: int = 3, *, after: datetime) -> list[datetime]:
    """The next ``n`` fire times strictly after ``after``, as aware datetimes in ``timezone``.

    ``after`` must be aware (any zone): a naive one would silently mean different instants
    on different machines. Fewer than ``n`` come back only if 9 years pass without a fire.
    """
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError("next_fire_times needs an aware `after` datetime")
    cron = _as_cron(expr)
    times: list[datetime] = []
    for fire in _fire_times(cron, _zone(timezone), after):
        if len(times) == n:
            break
        times.append(fire)
    return times


def runs_per_day(expr: str | CronExpr, timezone: str) -> float:
    """Average fires per day over the local days from REFERENCE_START for REFERENCE_DAYS days.

    DST is counted as the scheduler sees it: gap times are skipped, repeated times fire once,
    so a daily 02:30 in Europe/Berlin averages slightly below 1.
    """
    cron = _as_cron(expr)
    zone = _zone(timezone)
    per_day = len(cron.hours) * len(cron.minutes)
    total = 0
    for offset in range(REFERENCE_DAYS):
        day = REFERENCE_START + timedelta(days=offset)
        if cron.fires_on(day):
            total += per_day if _is_regular_day(day, zone) else _count_on_transition_day(cron, day, zone)
    return total / REFERENCE_DAYS


@functools.lru_cache(maxsize=16384)
def _is_regular_day(day: date, zone: tzinfo) -> bool:
    """True when the UTC offset is the same all day, so every wall-clock time exists once.

    Memoised: every cron of a zone asks about the same 1,461 reference days.
    """
    first = datetime.combine(day, time(0, 0)).replace(tzinfo=zone).utcoffset()
    last = datetime.combine(day, time(23, 59, 59)).replace(tzinfo=zone).utcoffset()
    return first == last


def _count_on_transition_day(cron: CronExpr, day: date, zone: tzinfo) -> int:
    return sum(
        _localize(datetime.combine(day, time(hour, minute)), zone) is not None
        for hour in cron.hours
        for minute in cron.minutes
    )


# --------------------------------------------------------------------------- words


def describe(expr: str | CronExpr) -> str:
    """A sentence for people, e.g. "At 02:00 AM, Monday through Friday".

    The day-of-week field is rewritten from its value set (Monday-first, Sunday as 7) so
    steps and ranges over Sunday read right: cron-descriptor says "Sunday through Sunday"
    for ``0-7`` and drops the start of ``1/2``.
    """
    cron = _as_cron(expr)
    fields = list(cron.fields)
    if cron.dow_restricted:
        fields[4] = "*" if len(cron.days_of_week) == 7 else _monday_first(cron.days_of_week)
    return str(get_description(" ".join(fields)))


def _monday_first(days: tuple[int, ...]) -> str:
    """Render days (0 = Sunday) as numbers 1-7 with Sunday last, runs of three or more as ranges."""
    return ",".join(
        f"{run[0]}-{run[-1]}" if len(run) >= 3 else ",".join(map(str, run))
        for run in consecutive_runs(sorted(7 if d == 0 else d for d in days))
    )


def consecutive_runs(values: list[int]) -> list[list[int]]:
    """Split sorted values into runs of consecutive integers (for compact ``a-b`` renderings)."""
    runs: list[list[int]] = []
    for value in values:
        if runs and runs[-1][-1] + 1 == value:
            runs[-1].append(value)
        else:
            runs.append([value])
    return runs
