"""Schedules in words: AWS cron read back to standard cron, fire times in the schedule's zone, runs per day."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backends.stepfunctions.cron import to_aws_cron
from planner.explain import (
    ScheduleSpec,
    aws_to_standard,
    explain_schedule,
    fire_time_text,
    parse_now,
    rate_text,
    schedule_change,
    schedule_of,
)
from planner.schedule import parse_cron

NOW = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # the day before Europe's spring-forward


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


def test_schedule_of_reads_argo_and_aws_bodies() -> None:
    argo = {"kind": "CronWorkflow", "spec": {"schedules": ["0 4 * * *"], "timezone": "Europe/Berlin", "suspend": True}}
    assert schedule_of(argo) == ScheduleSpec(("0 4 * * *",), "Europe/Berlin", True)
    legacy = {"kind": "CronWorkflow", "spec": {"schedule": "0 4 * * *"}}
    assert schedule_of(legacy) == ScheduleSpec(("0 4 * * *",), "UTC", False)
    aws = {"ScheduleExpression": "cron(0 4 * * ? *)", "ScheduleExpressionTimezone": "Asia/Tokyo", "State": "DISABLED"}
    assert schedule_of(aws) == ScheduleSpec(("cron(0 4 * * ? *)",), "Asia/Tokyo", True)
    assert schedule_of({"kind": "WorkflowTemplate", "spec": {}}) is None


def test_fire_times_follow_the_zone_through_dst() -> None:
    side = explain_schedule(ScheduleSpec(("30 2 * * *",), "Europe/Berlin", False), NOW)
    # 2026-03-29 02:30 does not exist in Berlin: skipped, as EventBridge Scheduler documents
    assert side["next_fire_times"] == [
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
        "2026-04-01T02:30:00+02:00",
    ]
    assert fire_time_text(side["next_fire_times"][0], "Europe/Berlin") == "Mon 2026-03-30 02:30 CEST"
    assert side["words"] == "At 02:30 AM"
    assert 0.99 < side["runs_per_day"] < 1


def test_aws_and_argo_explain_the_same_schedule_the_same_way() -> None:
    argo = explain_schedule(ScheduleSpec(("0 7 * * 1",), "America/New_York", False), NOW)
    aws = explain_schedule(ScheduleSpec((to_aws_cron("0 7 * * 1"),), "America/New_York", False), NOW)
    for key in ("words", "runs_per_day", "next_fire_times"):
        assert argo[key] == aws[key]


def test_suspended_runs_zero_and_lists_no_fire_times() -> None:
    side = explain_schedule(ScheduleSpec(("0 * * * *",), "UTC", True), NOW)
    assert side["runs_per_day"] == 0 and side["cron_runs_per_day"] == 24 and side["next_fire_times"] == []


def test_rate_and_unknown_zone() -> None:
    rate = explain_schedule(ScheduleSpec(("rate(15 minutes)",), "UTC", False), NOW)
    assert rate["words"] == "Every 15 minutes" and rate["runs_per_day"] == 96 and rate["next_fire_times"] == []
    bad = explain_schedule(ScheduleSpec(("0 4 * * *",), "Mars/Olympus", False), NOW)
    assert bad["runs_per_day"] is None and "Mars/Olympus" in bad["problem"]


def test_schedule_change_only_when_the_schedule_differs() -> None:
    body = {"kind": "CronWorkflow", "spec": {"schedules": ["0 4 * * *"], "timezone": "UTC"}}
    relabelled = {**body, "metadata": {"labels": {"a": "b"}}}
    assert schedule_change(body, relabelled, NOW) is None
    created = schedule_change(None, body, NOW)
    assert created is not None and created["before"] is None and created["after"]["runs_per_day"] == 1


@pytest.mark.parametrize(
    ("per_day", "text"),
    [(24, "24/day"), (0.9973, "1/day"), (1 / 7, "1/week"), (12 / 365.25, "1/month"), (0, "0"), (None, "?")],
)
def test_rate_text(per_day: float | None, text: str) -> None:
    assert rate_text(per_day) == text


def test_parse_now() -> None:
    assert parse_now("2026-01-01T00:00:00Z") == datetime(2026, 1, 1, tzinfo=UTC)
