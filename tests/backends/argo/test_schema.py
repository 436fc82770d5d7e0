"""Every compiled object passes Argo's published schema (hera's models) and the semantic checks.

The second half mutates good objects in ways Argo would reject and asserts the
checks notice, so a check that silently passes everything fails here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from planner.resources import Resource
from tests.backends.argo import checks
from tests.backends.argo.helpers import CASES, Case, find

VARIANTS: dict[str, Case] = {
    **CASES,
    "dev_enabled": replace(CASES["repo_flows"], branch="dev", enable_schedules=True),
    "triggers_dev": replace(CASES["triggers"], branch="feature-x"),
}


def _external(case: Case) -> str:
    settings = case.load().backends[case.backend].argo
    assert settings is not None
    return settings.event_source


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_object_passes(name: str) -> None:
    case = VARIANTS[name]
    resources = case.compile()
    assert resources, "nothing compiled"
    assert checks.all_problems(resources, _external(case)) == []


def test_kinds_covered() -> None:
    """The cases together exercise every kind the compiler writes, and both schedule fields."""
    resources = [r for case in CASES.values() for r in case.compile()]
    assert {r.address.kind for r in resources} == {
        "WorkflowTemplate",
        "CronWorkflow",
        "Sensor",
        "EventSource",
        "ConfigMap",
    }
    specs = [r.body["spec"] for r in resources if r.address.kind == "CronWorkflow"]
    assert any("schedule" in s for s in specs) and any("schedules" in s for s in specs)


# --------------------------------------------------------------------------- the checks can fail


def _compiled() -> tuple[list[Resource], str]:
    case = CASES["triggers"]
    return case.compile(), _external(case)


Mutation = Callable[[list[Resource]], None]


def _body(resources: list[Resource], kind: str, name: str | None = None) -> dict[str, Any]:
    return find(resources, kind, name).body


def _set_unknown_container_key(resources: list[Resource]) -> None:
    _body(resources, "WorkflowTemplate", "settle")["spec"]["templates"][1]["container"]["imagePullPolice"] = "x"


def _dangling_dependency(resources: list[Resource]) -> None:
    _body(resources, "WorkflowTemplate", "settle")["spec"]["templates"][0]["dag"]["tasks"][1]["dependencies"] = ["nope"]


def _bad_retry_policy(resources: list[Resource]) -> None:
    _body(resources, "WorkflowTemplate", "settle")["spec"]["templates"][1]["retryStrategy"]["retryPolicy"] = "Never"


def _bad_concurrency(resources: list[Resource]) -> None:
    _body(resources, "CronWorkflow")["spec"]["concurrencyPolicy"] = "forbid"


def _sunday_as_seven(resources: list[Resource]) -> None:
    _body(resources, "CronWorkflow")["spec"]["schedule"] = "0 6 * * 5-7"


def _conditions_typo(resources: list[Resource]) -> None:
    _body(resources, "Sensor", "settle")["spec"]["triggers"][0]["template"]["conditions"] = "event-batch"


def _wrong_event_name(resources: list[Resource]) -> None:
    _body(resources, "Sensor", "reconcile")["spec"]["dependencies"][0]["eventName"] = "done"


def _wrong_exit_url(resources: list[Resource]) -> None:
    handler = _body(resources, "WorkflowTemplate", "settle")["spec"]["templates"][-1]
    handler["http"]["url"] = handler["http"]["url"].replace("/finished", "/finish")


def _empty_list(resources: list[Resource]) -> None:
    _body(resources, "WorkflowTemplate", "reconcile")["spec"]["imagePullSecrets"] = []


def _bad_label(resources: list[Resource]) -> None:
    _body(resources, "ConfigMap")["metadata"]["labels"]["team"] = "-bad-"


def _unknown_template_ref(resources: list[Resource]) -> None:
    trigger = _body(resources, "Sensor", "settle")["spec"]["triggers"][0]["template"]["argoWorkflow"]
    trigger["source"]["resource"]["spec"]["workflowTemplateRef"]["name"] = "payments-prod-settl"


def _missing_parameter_destination(resources: list[Resource]) -> None:
    trigger = _body(resources, "Sensor", "settle")["spec"]["triggers"][0]["template"]["argoWorkflow"]
    trigger["parameters"][1]["dest"] = "spec.arguments.parameters.5.value"


def _webhook_typo(resources: list[Resource]) -> None:
    _body(resources, "EventSource")["spec"]["webhook"]["finished"]["endpont"] = "/x"


def _cron_schedule_as_number(resources: list[Resource]) -> None:
    _body(resources, "CronWorkflow")["spec"]["startingDeadlineSeconds"] = "600"


def _long_name(resources: list[Resource]) -> None:
    body = _body(resources, "CronWorkflow")
    body["metadata"]["name"] = "x" * 53


def _bad_filter_comparator(resources: list[Resource]) -> None:
    _body(resources, "Sensor", "settle")["spec"]["dependencies"][0]["filters"]["data"][3]["comparator"] = "=>"


MUTATIONS: dict[str, Mutation] = {
    "set_unknown_container_key": _set_unknown_container_key,
    "dangling_dependency": _dangling_dependency,
    "bad_retry_policy": _bad_retry_policy,
    "bad_concurrency": _bad_concurrency,
    "sunday_as_seven": _sunday_as_seven,
    "conditions_typo": _conditions_typo,
    "wrong_event_name": _wrong_event_name,
    "wrong_exit_url": _wrong_exit_url,
    "empty_list": _empty_list,
    "bad_label": _bad_label,
    "unknown_template_ref": _unknown_template_ref,
    "missing_parameter_destination": _missing_parameter_destination,
    "webhook_typo": _webhook_typo,
    "cron_schedule_as_number": _cron_schedule_as_number,
    "long_name": _long_name,
    "bad_filter_comparator": _bad_filter_comparator,
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_checks_notice(mutation: str) -> None:
    resources, external = _compiled()
    resources = [Resource(r.address, copy.deepcopy(r.body), r.depends_on, r.flow) for r in resources]
    assert checks.all_problems(resources, external) == []
    MUTATIONS[mutation](resources)
    assert checks.all_problems(resources, external), f"{mutation} went unnoticed"
