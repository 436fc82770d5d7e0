"""Tests for planner.schedule: the strict grammar, fireability, time zones, fire times, words.

croniter is the reference reader: every expression the strict grammar accepts must mean
to flowplan exactly what it means to croniter (value sets and fire times).
"""

from __future__ import annotations

import contextlib
import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.errors import FlowplanError
from planner.schedule import (
    REFERENCE_DAYS,
    REFERENCE_START,
    CronError,
    CronExpr,
    EveryError,
    ScheduleError,
    TimezoneError,
    describe,
    every_to_cron,
    next_fire_times,
    parse_cron,
    runs_per_day,
    validate_every,
    validate_timezone,
)

BERLIN = ZoneInfo("Europe/Berlin")

# --------------------------------------------------------------------------- a generator of expressions

MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")

# (low, high as written, names, probability of "*")
_FIELD_SHAPES: tuple[tuple[int, int, tuple[str, ...], float], ...] = (
    (0, 59, (), 0.15),
    (0, 23, (), 0.3),
    (1, 31, (), 0.5),
    (1, 12, MONTH_NAMES, 0.5),
    (0, 7, DAY_NAMES, 0.5),
)


def random_expression(rnd: random.Random) -> str:
    """A standard cron made of ranges, steps, lists, names (any case) and day-of-week 0 and 7.

    Ranges always ascend and never have equal bounds, so most results are accepted; the
    ones that restrict both day fields, or never fire, exercise the refusals.
    """
    return " ".join(_random_field(rnd, *shape) for shape in _FIELD_SHAPES)


def _random_field(rnd: random.Random, low: int, high: int, names: tuple[str, ...], star: float) -> str:
    if rnd.random() < star:
        return "*"
    return ",".join(_random_item(rnd, low, high, names) for _ in range(rnd.choice((1, 1, 1, 2, 3))))


def _random_item(rnd: random.Random, low: int, high: int, names: tuple[str, ...]) -> str:
    span = high - low + 1 - (1 if high == 7 else 0)
    kind = rnd.choice(("value", "value", "range", "star_step", "range_step", "open_step"))
    if kind == "value":
        return _render(rnd, rnd.randint(low, high), low, names)
    if kind == "star_step":
        return f"*/{rnd.randint(1, span)}"
    start = rnd.randint(low, high - 1)
    if kind == "open_step":
        return f"{_render(rnd, start, low, names)}/{rnd.randint(1, span)}"
    end = rnd.randint(start + 1, high)
    text = f"{_render(rnd, start, low, names)}-{_render(rnd, end, low, names)}"
    return text if kind == "range" else f"{text}/{rnd.randint(1, span)}"


def _render(rnd: random.Random, value: int, low: int, names: tuple[str, ...]) -> str:
    index = value - low
    if names and index < len(names) and rnd.random() < 0.4:
        return rnd.choice((str.upper, str.lower, str.title))(names[index])
    return str(value)


def random_expressions(seed: int, count: int) -> list[str]:
    rnd = random.Random(seed)
    return [random_expression(rnd) for _ in range(count)]


def accepted(expressions: list[str]) -> list[CronExpr]:
    result = []
    for text in expressions:
        with contextlib.suppress(CronError):
            result.append(parse_cron(text))
    return result


# --------------------------------------------------------------------------- the strict grammar


@pytest.mark.parametrize(
    ("text", "minutes", "hours", "doms", "months", "dows"),
    [
        ("* * * * *", range(60), range(24), range(1, 32), range(1, 13), range(7)),
        ("0 2 * * 1-5", [0], [2], range(1, 32), range(1, 13), [1, 2, 3, 4, 5]),
        ("*/15 */6 */10 */4 */2", [0, 15, 30, 45], [0, 6, 12, 18], [1, 11, 21, 31], [1, 5, 9], [0, 2, 4, 6]),
        ("5/20 3/10 20/5 11/1 1/2", [5, 25, 45], [3, 13, 23], [20, 25, 30], [11, 12], [1, 3, 5]),
        ("10-20/5 1-5/2 1-10/4 2-8/3 1-7/2", [10, 15, 20], [1, 3, 5], [1, 5, 9], [2, 5, 8], [0, 1, 3, 5]),
        ("0,30 0,12 1,15 1,7 0,7", [0, 30], [0, 12], [1, 15], [1, 7], [0]),
        ("0 0 * jan-Mar,dec mon-FRI", [0], [0], range(1, 32), [1, 2, 3, 12], [1, 2, 3, 4, 5]),
        ("0 0 * * 7", [0], [0], range(1, 32), range(1, 13), [0]),
        ("0 0 * * 5-7", [0], [0], range(1, 32), range(1, 13), [0, 5, 6]),
        ("0 0 * * SUN-7", [0], [0], range(1, 32), range(1, 13), range(7)),
        ("0 0 * * */7", [0], [0], range(1, 32), range(1, 13), [0]),
        ("59/15 23/12 31/5 DEC/3 6/3", [59], [23], [31], [12], [6]),
        ("05 09 01 02 *", [5], [9], [1], [2], range(7)),
        ("0 0 29 2 *", [0], [0], [29], [2], range(7)),
        ("  0\t0  1 *  *  ", [0], [0], [1], range(1, 13), range(7)),
    ],
)
def test_accepted_forms_give_exact_value_sets(
    text: str, minutes: range, hours: range, doms: range, months: range, dows: range
) -> None:
    cron = parse_cron(text)
    assert cron.minutes == tuple(minutes)
    assert cron.hours == tuple(hours)
    assert cron.days_of_month == tuple(doms)
    assert cron.months == tuple(months)
    assert cron.days_of_week == tuple(dows)
    assert cron.text == text.strip()


@pytest.mark.parametrize(
    ("text", "dom_restricted", "dow_restricted"),
    [
        ("0 0 * * *", False, False),
        ("0 0 1 * *", True, False),
        ("0 0 * * 1", False, True),
        ("0 0 1 * 1", True, True),
        ("0 0 */2 * 1", True, True),  # "*/2" is a restriction (croniter, robfig); Vixie cron disagrees
        ("0 0 1-31 * *", True, False),
    ],
)
def test_restricted_flags_follow_the_text(text: str, dom_restricted: bool, dow_restricted: bool) -> None:
    cron = parse_cron(text)
    assert (cron.dom_restricted, cron.dow_restricted) == (dom_restricted, dow_restricted)


def test_both_days_restricted_means_either() -> None:
    cron = parse_cron("0 0 13 * 5")
    assert cron.fires_on(date(2025, 1, 13))  # a Monday, the 13th
    assert cron.fires_on(date(2025, 1, 3))  # a Friday
    assert not cron.fires_on(date(2025, 1, 6))  # a Monday, the 6th
    only_dom = parse_cron("0 0 13 * *")
    assert not only_dom.fires_on(date(2025, 1, 3))


DOW_ALLOWED = "values are 0-7 (0 and 7 = Sunday) or SUN-SAT"
WRAP = "range start is after its end; ranges do not wrap — write"
QUARTZ = "is a Quartz/AWS extension"
NEVER = "never fires: the earliest day-of-month allowed is"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0 0 * * 8", f'day-of-week field "8": {DOW_ALLOWED}'),
        ("60 * * * *", 'minute field "60": values are 0-59'),
        ("0 24 * * *", 'hour field "24": values are 0-23'),
        ("0 0 0 * *", 'day-of-month field "0": values are 1-31'),
        ("0 0 32 * *", 'day-of-month field "32": values are 1-31'),
        ("0 0 * 13 *", 'month field "13": values are 1-12 or JAN-DEC'),
        ("0 0 * 0 *", 'month field "0": values are 1-12 or JAN-DEC'),
        ("0-60 * * * *", 'minute field "0-60": values are 0-59'),
        ("005 * * * *", 'minute field "005": values are 0-59'),
        ("-5 * * * *", 'minute field "-5": is not a value, range or step; values are 0-59'),
        ("0 0 * JUN-DECEMBER *", 'month field "JUN-DECEMBER": unknown name "DECEMBER"; values are 1-12'),
        ("0 0 * * foo", f'day-of-week field "foo": unknown name "foo"; {DOW_ALLOWED}'),
        ("MON * * * *", 'minute field "MON": names are allowed only in month and day-of-week; values are 0-59'),
        ("5-1 * * * *", f'minute field "5-1": {WRAP} "5-59,0-1"'),
        ("0 0 * NOV-FEB *", f'month field "NOV-FEB": {WRAP} "11-12,1-2"'),
        ("0 0 * * MON-SUN", f'day-of-week field "MON-SUN": {WRAP} "1-7" (7 is Sunday)'),
        ("0 0 * * FRI-TUE", f'day-of-week field "FRI-TUE": {WRAP} "5-7,1-2"'),
        ("0 0 * * 7-2", f'day-of-week field "7-2": {WRAP} "0-2" (0 is Sunday)'),
        ("5-5 * * * *", 'minute field "5-5": range with equal bounds (croniter reads it as the whole field)'),
        ("0 0 * 3-3 *", 'month field "3-3": range with equal bounds (croniter reads it as the whole field); write "3"'),
        ("0 0 * * SUN-0", 'day-of-week field "SUN-0": range with equal bounds'),
        ("*/0 * * * *", 'minute field "*/0": step must be a number from 1 to 60'),
        ("0 */25 * * *", 'hour field "*/25": step must be a number from 1 to 24'),
        ("0 0 * * 1-5/8", 'day-of-week field "1-5/8": step must be a number from 1 to 7'),
        ("0 0 * * */MON", 'day-of-week field "*/MON": step must be a number from 1 to 7'),
        ("0 0 * * 7/2", 'day-of-week field "7/2": Sunday as 7 cannot start a step (dialects disagree)'),
        ("*-5 * * * *", 'minute field "*-5": * cannot start a range; values are 0-59'),
        ("1,,2 * * * *", 'minute field "1,,2": empty list item'),
        ("1, * * * *", 'minute field "1,": empty list item'),
        ("*,5 * * * *", 'minute field "*,5": "*" cannot be part of a list; write * alone'),
        ("0 0 L * *", f'day-of-month field "L": "L" (last day) {QUARTZ}, not standard cron; values are 1-31'),
        ("0 0 15W * *", 'day-of-month field "15W": "W" (nearest weekday) is a Quartz/AWS extension'),
        ("0 0 * * 5L", 'day-of-week field "5L": "L" (last day) is a Quartz/AWS extension'),
        ("0 0 * * 1#2", 'day-of-week field "1#2": "#" (nth weekday of the month) is a Quartz/AWS extension'),
        ("0 0 ? * 1", 'day-of-month field "?": "?" (no specific value) is a Quartz/AWS extension; write *'),
        ("H 0 * * *", 'minute field "H": "H" (hashed value) is a Jenkins extension'),
        ("@daily", 'macros like "@daily" are not supported'),
        ("@reboot", 'macros like "@reboot" are not supported'),
        ("0 0 * * * *", "has 6 fields; standard cron has exactly 5 (seconds and year fields belong to other dialects)"),
        ("0 0 0 * * ? 2025", "has 7 fields; standard cron has exactly 5"),
        ("0 0 * *", "has 4 fields; standard cron has exactly 5"),
        ("", "has 0 fields; standard cron has exactly 5"),
        ("0\u00a00 * * *", "has 4 fields"),  # a no-break space is not a separator
        ("0 0 30 2 *", f"{NEVER} 30, but the longest month allowed (FEB) has 29 days"),
        ("0 0 31 4,6,9,11 *", f"{NEVER} 31, but the longest month allowed (APR,JUN,SEP,NOV) has 30 days"),
        ("0 0 30-31 FEB *", "never fires"),
        ("0 0 1 * 0-7", 'day-of-week field "0-7": allows every day while the other day field is restricted'),
        ("0 0 1-31 * MON", 'day-of-month field "1-31": allows every day while the other day field is restricted'),
        ("0 0 */1 * */2", 'day-of-month field "*/1": allows every day'),
    ],
)  # fmt: skip
def test_rejected_forms_name_field_token_and_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(CronError) as caught:
        parse_cron(text)
    assert f'cron "{text}": {message}' in caught.value.message
    assert isinstance(caught.value, FlowplanError)


def test_cron_error_carries_field_and_token() -> None:
    with pytest.raises(CronError) as caught:
        parse_cron("0 0 * * 1,8")
    assert (caught.value.field, caught.value.token, caught.value.expression) == ("day-of-week", "8", "0 0 * * 1,8")


def test_macro_and_field_count_errors_hint_at_the_fix() -> None:
    with pytest.raises(CronError) as caught:
        parse_cron("@daily")
    assert caught.value.hint is not None and "every: hourly|daily|weekly" in caught.value.hint
    with pytest.raises(CronError) as caught:
        parse_cron("0 0 0 * * *")
    assert caught.value.hint is not None and "minute hour day-of-month month day-of-week" in caught.value.hint


@pytest.mark.parametrize(
    "text", ["0 0 29 2 *", "0 0 31 * *", "0 0 30 1-3 *", "0 0 31 2,3 *", "0 0 30 2 1", "0 0 31 4 SUN"]
)
def test_fireable_edge_cases_are_accepted(text: str) -> None:
    parse_cron(text)


@settings(max_examples=200, deadline=None)
@given(
    days=st.sets(st.integers(1, 31), min_size=1, max_size=4),
    months=st.sets(st.integers(1, 12), min_size=1, max_size=3),
)
def test_fireability_matches_a_calendar_with_a_leap_year(days: set[int], months: set[int]) -> None:
    text = f"0 0 {','.join(map(str, sorted(days)))} {','.join(map(str, sorted(months)))} *"
    calendar_says = any(
        (REFERENCE_START + timedelta(days=i)).day in days and (REFERENCE_START + timedelta(days=i)).month in months
        for i in range(REFERENCE_DAYS)
    )
    try:
        parse_cron(text)
        parsed = True
    except CronError:
        parsed = False
    assert parsed == calendar_says


def test_value_sets_agree_with_croniter() -> None:
    crons = accepted(random_expressions(seed=1, count=600))
    assert len(crons) > 400
    for cron in crons:
        expanded = croniter(cron.text).expanded
        full = (range(60), range(24), range(1, 32), range(1, 13), range(7))
        ours = (cron.minutes, cron.hours, cron.days_of_month, cron.months, cron.days_of_week)
        for theirs, mine, everything in zip(expanded, ours, full, strict=True):
            assert tuple(everything if theirs == ["*"] else sorted(theirs)) == mine, cron.text


def test_generator_exercises_refusals_too() -> None:
    texts = random_expressions(seed=1, count=600)
    refused = len(texts) - len(accepted(texts))
    assert 5 < refused < 200


# --------------------------------------------------------------------------- every, time zones


@pytest.mark.parametrize(("every", "cron"), [("hourly", "0 * * * *"), ("daily", "0 0 * * *"), ("weekly", "0 0 * * 0")])
def test_every_shorthands(every: str, cron: str) -> None:
    assert every_to_cron(every) == cron
    validate_every(every)
    assert parse_cron(cron).text == cron


@pytest.mark.parametrize(
    ("every", "hint"),
    [("dayly", 'did you mean "daily"?'), ("Hourly", 'did you mean "hourly"?'), ("monthly", None)],
)
def test_unknown_every_is_refused(every: str, hint: str | None) -> None:
    with pytest.raises(EveryError) as caught:
        every_to_cron(every)
    assert caught.value.message == f'every: "{every}" is not supported; allowed values are hourly, daily, weekly'
    assert caught.value.hint == (hint or "for anything else write a cron expression")
    assert isinstance(caught.value, ScheduleError) and not isinstance(caught.value, CronError)


@pytest.mark.parametrize("name", ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Asia/Kolkata"])
def test_known_time_zones_pass(name: str) -> None:
    validate_timezone(name)


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("europe/berlin", 'did you mean "Europe/Berlin"?'),
        ("Europe/Berln", 'did you mean "Europe/Berlin"'),
        ("America/New York", 'did you mean "America/New_York"'),
        ("Mars/Olympus_Mons", 'use an IANA name such as "UTC" or "Europe/Berlin"'),
        ("", 'use an IANA name such as "UTC" or "Europe/Berlin"'),
        ("Europe", None),
        ("../../etc/passwd", None),
        ("localtime", None),
    ],
)
def test_unknown_time_zones_are_refused_with_suggestions(name: str, hint: str | None) -> None:
    with pytest.raises(TimezoneError) as caught:
        validate_timezone(name)
    assert caught.value.message == f'time zone "{name}" is not a known IANA time zone'
    assert caught.value.hint is not None
    if hint:
        assert caught.value.hint.startswith(hint)
    assert isinstance(caught.value, ScheduleError) and not isinstance(caught.value, CronError)


def test_fire_times_refuse_an_unknown_zone() -> None:
    with pytest.raises(TimezoneError):
        next_fire_times("0 0 * * *", "Europe/Berln", after=datetime(2025, 1, 1, tzinfo=UTC))


# --------------------------------------------------------------------------- fire times


def test_next_fire_times_are_aware_in_the_zone_and_strictly_after() -> None:
    after = datetime(2025, 1, 6, 2, 0, tzinfo=BERLIN)  # a Monday, exactly a fire time
    times = next_fire_times("0 2 * * 1-5", "Europe/Berlin", n=4, after=after)
    assert times == [datetime(2025, 1, d, 2, 0, tzinfo=BERLIN) for d in (7, 8, 9, 10)]
    assert all(t.tzinfo == BERLIN for t in times)


def test_after_may_be_in_another_zone() -> None:
    after = datetime(2025, 1, 6, 0, 30, tzinfo=UTC)  # 01:30 in Berlin
    times = next_fire_times("0 1,2 * * *", "Europe/Berlin", n=2, after=after)
    assert [t.astimezone(UTC).hour for t in times] == [1, 0]  # 02:00 Berlin today, 01:00 tomorrow
    assert times[0] == datetime(2025, 1, 6, 2, 0, tzinfo=BERLIN)


def test_naive_after_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_fire_times("0 0 * * *", "UTC", after=datetime(2025, 1, 1))


def test_spring_forward_skips_the_missing_time() -> None:
    # Europe/Berlin, 2025-03-30: 02:00 CET jumps to 03:00 CEST, so 02:30 does not exist that day.
    times = next_fire_times("30 2 * * *", "Europe/Berlin", n=3, after=datetime(2025, 3, 28, 12, tzinfo=BERLIN))
    assert [t.isoformat() for t in times] == [
        "2025-03-29T02:30:00+01:00",
        "2025-03-31T02:30:00+02:00",
        "2025-04-01T02:30:00+02:00",
    ]


def test_hourly_across_spring_forward_has_no_gap_hour_and_correct_offsets() -> None:
    times = next_fire_times("0 * * * *", "Europe/Berlin", n=4, after=datetime(2025, 3, 30, 0, 30, tzinfo=BERLIN))
    assert [t.isoformat() for t in times] == [
        "2025-03-30T01:00:00+01:00",
        "2025-03-30T03:00:00+02:00",
        "2025-03-30T04:00:00+02:00",
        "2025-03-30T05:00:00+02:00",
    ]
    utc = [t.astimezone(UTC) for t in times]
    assert utc[1] - utc[0] == timedelta(hours=1)  # 00:00 UTC to 01:00 UTC: no real hour is lost


def test_fall_back_fires_a_repeated_time_once() -> None:
    # Europe/Berlin, 2025-10-26: 03:00 CEST falls back to 02:00 CET; 02:00-02:59 happens twice.
    times = next_fire_times("*/30 2 * * *", "Europe/Berlin", n=3, after=datetime(2025, 10, 26, 1, tzinfo=BERLIN))
    assert [t.isoformat() for t in times] == [
        "2025-10-26T02:00:00+02:00",
        "2025-10-26T02:30:00+02:00",
        "2025-10-27T02:00:00+01:00",
    ]


def test_after_inside_the_repeated_hour_counts_real_time() -> None:
    second_0215 = datetime(2025, 10, 26, 1, 15, tzinfo=UTC)  # 02:15 CET, the second 02:15 that night
    times = next_fire_times("30 2,3 * * *", "Europe/Berlin", n=2, after=second_0215)
    # 02:30 fired at 02:30 CEST (00:30 UTC) and does not repeat at 02:30 CET; 03:30 CET is next.
    assert [t.isoformat() for t in times] == ["2025-10-26T03:30:00+01:00", "2025-10-27T02:30:00+01:00"]


def test_feb_29_fires_only_in_leap_years_and_skips_2100() -> None:
    times = next_fire_times("0 0 29 2 *", "UTC", n=3, after=datetime(2092, 3, 1, tzinfo=UTC))
    assert [t.year for t in times] == [2096, 2104, 2108]


def test_fire_times_agree_with_croniter_in_utc() -> None:
    crons = accepted(random_expressions(seed=2, count=250))
    starts = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2028, 2, 28, 23, 59, 30, tzinfo=UTC))
    for cron in crons:
        for start in starts:
            reference = croniter(cron.text, start)
            expected = [reference.get_next(datetime) for _ in range(12)]
            assert next_fire_times(cron, "UTC", n=12, after=start) == expected, cron.text


# --------------------------------------------------------------------------- runs per day


def _sundays_in_reference_span() -> int:
    return sum((REFERENCE_START + timedelta(days=i)).weekday() == 6 for i in range(REFERENCE_DAYS))


@pytest.mark.parametrize(
    ("text", "zone", "expected"),
    [
        ("* * * * *", "UTC", 1440.0),
        ("0 * * * *", "UTC", 24.0),
        ("*/15 9-17 * * *", "Asia/Kolkata", 36.0),
        ("0 0 * * *", "Europe/Berlin", 1.0),
        ("0 0 29 2 *", "UTC", 1 / 1461),
        ("0 0 1 1 *", "UTC", 4 / 1461),
        ("0 0 31 * *", "UTC", 28 / 1461),
        # 4 spring-forward days lose the 02:xx hour; fall-back days fire 02:xx once.
        ("0 * * * *", "Europe/Berlin", 24 - 4 / 1461),
        ("30 2 * * *", "Europe/Berlin", 1 - 4 / 1461),
        ("30 2 * * *", "America/New_York", 1 - 4 / 1461),
    ],
)
def test_runs_per_day(text: str, zone: str, expected: float) -> None:
    assert runs_per_day(text, zone) == pytest.approx(expected)


def test_weekly_runs_per_day_counts_the_sundays_of_the_span() -> None:
    assert runs_per_day(every_to_cron("weekly"), "UTC") == pytest.approx(_sundays_in_reference_span() / 1461)


# --------------------------------------------------------------------------- words


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("0 2 * * 1-5", "At 02:00 AM, Monday through Friday"),
        ("0 2 * * MON-FRI", "At 02:00 AM, Monday through Friday"),
        ("0 2 * * 7", "At 02:00 AM, only on Sunday"),
        ("0 2 * * 0", "At 02:00 AM, only on Sunday"),
        ("0 2 * * 5-7", "At 02:00 AM, Friday through Sunday"),
        ("0 2 * * 0,6", "At 02:00 AM, only on Saturday and Sunday"),
        ("0 0 * * 0-7", "At 12:00 AM"),
        ("0 0 * * 1/2", "At 12:00 AM, only on Monday, Wednesday, and Friday"),
        ("0 0 1 * 1", "At 12:00 AM, on day 1 of the month, or on Monday"),
        ("*/15 * * * *", "Every 15 minutes"),
        ("0 0 29 2 *", "At 12:00 AM, on day 29 of the month, only in February"),
    ],
)
def test_describe(text: str, words: str) -> None:
    assert describe(text) == words


def test_describe_handles_every_generated_expression() -> None:
    for cron in accepted(random_expressions(seed=3, count=200)):
        words = describe(cron)
        assert words and "Sunday through Sunday" not in words
