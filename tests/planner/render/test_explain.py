"""Schedules in words: fire times in the schedule's zone, runs per day, from the facts the backends read.

How AWS cron reads back to standard cron is the Step Functions backend's
(tests/backends/stepfunctions/test_cron.py); here the explainer gets its facts
from the Argo and Step Functions compilers, as the plan will hand them over.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backends.argo.compile import ArgoCompiler
from backends.stepfunctions.compile import StepFunctionsCompiler
from backends.stepfunctions.cron import to_aws_cron
from planner.contract import ScheduleFacts
from planner.explain import (
    explain_schedule,
    fire_time_text,
    parse_now,
    rate_text,
    schedule_change,
)

NOW = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # the day before Europe's spring-forward


def argo(expression: str, timezone: str = "UTC", suspend: bool = False) -> ScheduleFacts:
    body = {"kind": "CronWorkflow", "spec": {"schedules": [expression], "timezone": timezone, "suspend": suspend}}
    facts = ArgoCompiler().schedule_facts("CronWorkflow", body)
    assert facts is not None
    return facts


def aws(expression: str, timezone: str = "UTC", suspend: bool = False) -> ScheduleFacts:
    body = {
        "ScheduleExpression": expression,
        "ScheduleExpressionTimezone": timezone,
        "State": "DISABLED" if suspend else "ENABLED",
    }
    facts = StepFunctionsCompiler().schedule_facts("Schedule", body)
    assert facts is not None
    return facts


def test_compilers_read_their_own_schedule_objects() -> None:
    berlin = argo("0 4 * * *", "Europe/Berlin", suspend=True)
    assert (berlin.timezone, berlin.suspended, berlin.expressions[0].cron) == ("Europe/Berlin", True, "0 4 * * *")
    legacy = ArgoCompiler().schedule_facts("CronWorkflow", {"kind": "CronWorkflow", "spec": {"schedule": "0 4 * * *"}})
    assert legacy is not None and legacy.timezone == "UTC" and not legacy.suspended
    tokyo = aws("cron(0 4 * * ? *)", "Asia/Tokyo", suspend=True)
    assert tokyo.expressions[0].written == "cron(0 4 * * ? *)" and tokyo.expressions[0].cron == "0 4 * * *"
    assert tokyo.suspended and tokyo.timezone == "Asia/Tokyo"
    assert aws("rate(2 hours)").expressions[0].every == (2, "hour")
    assert ArgoCompiler().schedule_facts("WorkflowTemplate", {"kind": "WorkflowTemplate"}) is None
    assert StepFunctionsCompiler().schedule_facts("StateMachine", {"ScheduleExpression": "rate(1 day)"}) is None


def test_fire_times_follow_the_zone_through_dst() -> None:
    side = explain_schedule(argo("30 2 * * *", "Europe/Berlin"), NOW)
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
    on_argo = explain_schedule(argo("0 7 * * 1", "America/New_York"), NOW)
    on_aws = explain_schedule(aws(to_aws_cron("0 7 * * 1"), "America/New_York"), NOW)
    for key in ("words", "runs_per_day", "next_fire_times"):
        assert on_argo[key] == on_aws[key]


def test_suspended_runs_zero_and_lists_no_fire_times() -> None:
    side = explain_schedule(argo("0 * * * *", suspend=True), NOW)
    assert side["runs_per_day"] == 0 and side["cron_runs_per_day"] == 24 and side["next_fire_times"] == []


def test_rate_and_unknown_zone() -> None:
    rate = explain_schedule(aws("rate(15 minutes)"), NOW)
    assert rate["words"] == "Every 15 minutes" and rate["runs_per_day"] == 96 and rate["next_fire_times"] == []
    bad = explain_schedule(argo("0 4 * * *", "Mars/Olympus"), NOW)
    assert bad["runs_per_day"] is None and "Mars/Olympus" in bad["problem"]


def test_schedule_change_only_when_the_schedule_differs() -> None:
    body = {"kind": "CronWorkflow", "spec": {"schedules": ["0 4 * * *"], "timezone": "UTC"}}
    relabelled = {**body, "metadata": {"labels": {"a": "b"}}}
    compiler = ArgoCompiler()
    facts = compiler.schedule_facts("CronWorkflow", body)
    assert schedule_change(facts, compiler.schedule_facts("CronWorkflow", relabelled), NOW) is None
    created = schedule_change(None, facts, NOW)
    assert created is not None and created["before"] is None and created["after"]["runs_per_day"] == 1


@pytest.mark.parametrize(
    ("per_day", "text"),
    [(24, "24/day"), (0.9973, "1/day"), (1 / 7, "1/week"), (12 / 365.25, "1/month"), (0, "0"), (None, "?")],
)
def test_rate_text(per_day: float | None, text: str) -> None:
    assert rate_text(per_day) == text


def test_parse_now() -> None:
    assert parse_now("2026-01-01T00:00:00Z") == datetime(2026, 1, 1, tzinfo=UTC)
