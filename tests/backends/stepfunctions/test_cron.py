"""Tests for backends.stepfunctions.cron: standard cron to AWS EventBridge cron.

The equivalence tests read the standard expression with croniter and its translation
with pyawscron (an independent AWS cron evaluator) and demand the same fire times; the
translation's syntax is checked with aws-cron-expression-validator.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_cron_expression_validator.validator import AWSCronExpressionValidator
from croniter import croniter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyawscron import AWSCron
from pyawscron.occurrence import Occurrence

from backends.stepfunctions.cron import AwsCronError, aws_to_standard, to_aws_cron
from planner.schedule import CronError, CronExpr, parse_cron
from tests.planner.test_schedule import random_expression, random_expressions

FIRES = 20
STARTS = (
    datetime(2025, 1, 1, tzinfo=UTC),
    datetime(2024, 2, 28, 23, 59, 30, tzinfo=UTC),  # a leap day next, seconds on the clock
    datetime(2027, 12, 31, 23, 30, tzinfo=UTC),  # a year boundary next
)

# --------------------------------------------------------------------------- pyawscron workaround

_original_find_once = Occurrence._Occurrence__find_once  # type: ignore[attr-defined]


def _find_once_skipping_short_months(self: Any, parsed: AWSCron, datetime_from: datetime) -> datetime | None:
    """pyawscron 1.0.7 bug: a day-of-month the month lacks (31 in April, 29 in Feb 2025) crashes.

    ``Occurrence.__find_once`` builds ``datetime(year, month, day)`` without checking the
    day exists and raises "day is out of range for month". AWS skips such months. The
    innermost call that raises picked the first allowed month at or after
    ``datetime_from``; resume from the first day of the month after it. The step counter
    (capped at 10) restarts, or Feb 29 across 2100 would trip it.
    """
    try:
        return _original_find_once(self, parsed, datetime_from)  # type: ignore[no-any-return]
    except ValueError as error:
        if "day is out of range for month" not in str(error):
            raise
    year = next(y for y in parsed.years if y >= datetime_from.year)
    first_month = datetime_from.month if year == datetime_from.year else 1
    month = next(m for m in parsed.months if m >= first_month)
    self.iter = 0
    resume = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return self._Occurrence__find_once(parsed, resume)  # type: ignore[no-any-return]


@pytest.fixture(autouse=True, scope="module")
def _patched_pyawscron() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Occurrence, "_Occurrence__find_once", _find_once_skipping_short_months)
        yield


def test_the_pyawscron_bug_is_still_there_and_worked_around() -> None:
    """If this starts failing without the patch, pyawscron was fixed: drop the workaround."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Occurrence, "_Occurrence__find_once", _original_find_once)
        with pytest.raises(ValueError, match="day is out of range for month"):
            AWSCron.get_next_n_schedule(2, datetime(2025, 1, 1, tzinfo=UTC), "0 0 31 * ? *")
    times = AWSCron.get_next_n_schedule(3, datetime(2025, 1, 1, tzinfo=UTC), "0 0 31 * ? *")
    assert [t.month for t in times] == [1, 3, 5]


# --------------------------------------------------------------------------- helpers


def unwrap(aws: str) -> str:
    assert aws.startswith("cron(") and aws.endswith(")"), aws
    return aws[len("cron(") : -1]


def assert_equivalent(cron: CronExpr, starts: tuple[datetime, ...] = STARTS, fires: int = FIRES) -> str:
    """Translate, validate the syntax, and compare fire times from each start; returns the translation."""
    aws = unwrap(to_aws_cron(cron))
    AWSCronExpressionValidator.validate(aws)
    for start in starts:
        reference = croniter(cron.text, start)
        expected = [reference.get_next(datetime) for _ in range(fires)]
        actual = AWSCron.get_next_n_schedule(fires, start, aws)
        assert actual == expected, f"{cron.text!r} -> {aws!r} from {start.isoformat()}"
    return aws


# --------------------------------------------------------------------------- readable translations


@pytest.mark.parametrize(
    ("standard", "aws"),
    [
        ("0 2 * * *", "cron(0 2 * * ? *)"),
        ("*/15 * * * *", "cron(*/15 * * * ? *)"),
        ("5/15 9-17 * * *", "cron(5/15 9-17 * * ? *)"),
        ("0 0 1,15 * *", "cron(0 0 1,15 * ? *)"),
        ("0 0 1-10/3 jan-mar *", "cron(0 0 1-10/3 JAN-MAR ? *)"),
        ("0 0 1 jan-jun/2 *", "cron(0 0 1 1-6/2 ? *)"),
        ("0 0 1 Dec/3,feb *", "cron(0 0 1 2,12 ? *)"),
        ("0 0 1 oct/1 *", "cron(0 0 1 10/1 ? *)"),
        ("0 2 * * 1-5", "cron(0 2 ? * MON-FRI *)"),
        ("0 2 * * mon-fri", "cron(0 2 ? * MON-FRI *)"),
        ("0 0 * * 0", "cron(0 0 ? * SUN *)"),
        ("0 0 * * 7", "cron(0 0 ? * SUN *)"),
        ("0 0 * * 0,7", "cron(0 0 ? * SUN *)"),
        ("0 0 * * 6,0", "cron(0 0 ? * SUN,SAT *)"),
        ("0 0 * * 5-7", "cron(0 0 ? * SUN,FRI,SAT *)"),
        ("0 0 * * 3-7", "cron(0 0 ? * SUN,WED-SAT *)"),
        ("0 0 * * */2", "cron(0 0 ? * SUN,TUE,THU,SAT *)"),
        ("0 0 * * 1/2", "cron(0 0 ? * MON,WED,FRI *)"),
        ("0 0 * * 1-7/2", "cron(0 0 ? * SUN,MON,WED,FRI *)"),
        ("0 0 * * 0-7", "cron(0 0 * * ? *)"),  # every day: no day restriction left
        ("0 9 1 * *", "cron(0 9 1 * ? *)"),
        ("0 0 * 2 1", "cron(0 0 ? 2 MON *)"),
        ("0,30 */4 * * *", "cron(0,30 */4 * * ? *)"),
        ("*/20,5 0-6/2,12 1-3,*/10 * *", "cron(0,5,20,40 0,2,4,6,12 1-3,11,21,31 * ? *)"),
        ("0 0 * * *", "cron(0 0 * * ? *)"),
    ],
)
def test_translation_is_readable(standard: str, aws: str) -> None:
    assert to_aws_cron(standard) == aws
    assert to_aws_cron(parse_cron(standard)) == aws


@pytest.mark.parametrize("standard", ["0 0 1 * 1", "0 0 1,15 * MON-FRI", "0 0 */2 * 0", "0 0 13 * 5"])
def test_both_day_fields_restricted_is_refused_with_a_split(standard: str) -> None:
    with pytest.raises(AwsCronError) as caught:
        to_aws_cron(standard)
    error = caught.value
    assert isinstance(error, CronError)
    assert error.message == (
        f'cron "{standard}": restricts both day-of-month and day-of-week, which standard cron reads as '
        "'either day matches'; AWS cron cannot express 'either'"
    )
    minute, hour, dom, month, dow = standard.split()
    assert error.hint is not None
    assert f'"{minute} {hour} {dom} {month} *"' in error.hint
    assert f'"{minute} {hour} * {month} {dow}"' in error.hint
    assert error.hint.startswith("split it into two schedules")


def test_invalid_standard_cron_is_a_cron_error_not_an_aws_one() -> None:
    with pytest.raises(CronError) as caught:
        to_aws_cron("0 0 L * *")
    assert not isinstance(caught.value, AwsCronError)


# --------------------------------------------------------------------------- equivalence

HAND_PICKED = [
    "* * * * *",
    "0 * * * *",
    "0 0 * * *",
    "0 0 * * 0",
    "0 0 * * 7",
    "0 0 * * 0,7",
    "0 0 * * 5-7",
    "0 0 * * SUN-7",
    "0 0 * * 0-7",
    "0 0 * * sun-sat",
    "0 0 * * Sat,Sun",
    "0 0 * * 1-7/2",
    "0 0 * * 0-7/2",
    "0 0 * * 0-7/7",
    "0 0 * * */2",
    "0 0 * * */3",
    "0 0 * * */4",
    "0 0 * * */7",
    "0 0 * * 1/2",
    "0 0 * * 3/2",
    "0 0 * * 6/1",
    "0 0 * * 2-7/3",
    "0 2 * * 1-5",
    "0 9-17 * * MON-FRI",
    "*/10 9-17 * * 1-5",
    "0 0 * 2 0",
    "0 12 * jan-mar/2 mon-fri",
    "0 0 29 2 *",
    "0 0 31 * *",
    "0 0 30 * *",
    "0 0 31 1,3 *",
    "0 0 31 2,3 *",
    "0 0 30 1-3 *",
    "0 0 28-31 * *",
    "0 0 29 1,2 *",
    "59 23 31 12 *",
    "0 0 1 1 *",
    "15 14 1 * *",
    "0 4 8-14 * *",
    "0 0 1,15 * *",
    "0 0,12 1 */2 *",
    "0 0 1-10/3,20 * *",
    "0 0 */10 * *",
    "0 0 31/2 * *",
    "0 0 * DEC/3 *",
    "0 0 * */5 *",
    "5/15 * * * *",
    "59/15 * * * *",
    "0-30/7 3-20/4 * * *",
    "*/7 */5 */3 */2 *",
    "*/20,5 0-6/2,12 1-3,*/10 * *",
    "23 0-20/2 * * *",
    "5 4 * * sun",
    "0 22 * * 1-5",
    "30 2 * * *",
    "0 0 * 11,12 5-7",
    "1,2,3,58,59 0,23 * * *",
    "0 0 * jul-dec */2",
    "0 6 * * Mon,Wed,Fri",
    "*/1 */1 */1 */1 *",
]

BOTH_RESTRICTED = ["0 0 1 * 1", "0 0 13 * 5", "0 0 1,15 * MON-FRI", "0 0 */2 * 0", "0 0 29 2 1", "0 0 31 4 SUN"]


def test_hand_picked_translations_fire_exactly_like_the_original() -> None:
    assert len(HAND_PICKED) == 60
    for text in HAND_PICKED:
        assert_equivalent(parse_cron(text))


@pytest.mark.parametrize("text", BOTH_RESTRICTED)
def test_hand_picked_either_rule_expressions_raise(text: str) -> None:
    with pytest.raises(AwsCronError):
        to_aws_cron(text)


def _partition(texts: list[str]) -> tuple[list[CronExpr], list[CronExpr]]:
    """Accepted expressions split into translatable ones and ones restricting both day fields."""
    translatable: list[CronExpr] = []
    both: list[CronExpr] = []
    for text in texts:
        try:
            cron = parse_cron(text)
        except CronError:
            continue
        (both if cron.dom_restricted and cron.dow_restricted else translatable).append(cron)
    return translatable, both


def test_random_translations_fire_exactly_like_the_original() -> None:
    translatable, both = _partition(random_expressions(seed=20240330, count=800))
    assert len(translatable) >= 450, len(translatable)  # with the 60 hand-picked ones: over 500
    assert len(both) >= 100
    shapes = {unwrap(to_aws_cron(cron)).split()[4] for cron in translatable}
    assert {"?", "SUN"} <= shapes and any("-" in s for s in shapes)  # weekday lists and ranges are covered
    for cron in translatable:
        assert_equivalent(cron)
    for cron in both:
        with pytest.raises(AwsCronError):
            to_aws_cron(cron)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False))
def test_translation_property(rnd: random.Random) -> None:
    """Any accepted expression translates to valid AWS syntax firing identically, or is refused for 'either'."""
    try:
        cron = parse_cron(random_expression(rnd))
    except CronError:
        return
    if cron.dom_restricted and cron.dow_restricted:
        with pytest.raises(AwsCronError):
            to_aws_cron(cron)
        return
    assert_equivalent(cron, starts=STARTS[:1])


@pytest.mark.slow
def test_large_random_sweep() -> None:
    translatable, both = _partition(random_expressions(seed=7, count=20_000))
    assert len(translatable) > 12_000
    for cron in translatable:
        assert_equivalent(cron, starts=STARTS[:2])
    for cron in both:
        with pytest.raises(AwsCronError):
            to_aws_cron(cron)


# --------------------------------------------------------------------------- the way back, for explanations


@pytest.mark.parametrize(
    "cron",
    [
        "30 2 * * *",
        "0 * * * *",
        "0 7 * * MON",
        "*/15 9-17 * * 1-5",
        "0 0 1 * *",
        "5 4 * JAN,JUL SUN",
        "0 12 * * 0,6",
        "0 6 1-7 * *",
        "0 3 * * 5-7",
    ],
)
def test_aws_cron_reads_back_to_the_same_fire_times(cron: str) -> None:
    back = aws_to_standard(to_aws_cron(cron))
    assert back is not None
    a, b = parse_cron(cron), parse_cron(back)
    assert (a.minutes, a.hours, a.days_of_month, a.months, a.days_of_week) == (
        b.minutes,
        b.hours,
        b.days_of_month,
        b.months,
        b.days_of_week,
    )


@pytest.mark.parametrize(
    "expression", ["cron(0 12 L * ? *)", "cron(0 12 ? * 2#1 *)", "cron(0 12 * * ? 2027)", "rate(5 minutes)"]
)
def test_aws_expressions_without_a_standard_form_are_not_guessed(expression: str) -> None:
    assert aws_to_standard(expression) is None


def test_aws_day_numbers_start_at_sunday() -> None:
    assert aws_to_standard("cron(0 9 ? * 2-6 *)") == "0 9 * * 1-5"
