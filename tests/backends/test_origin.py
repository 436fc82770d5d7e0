"""Objects another tool deployed: the readers recognise Metaflow's markers, the core only reads ``made_by``."""

from __future__ import annotations

from typing import Any

import pytest

from backends.argo.client import kind_of
from backends.argo.listing import to_live
from backends.origin import made_by
from backends.stepfunctions.reader import Found
from planner.building.classify import deployed_by
from planner.resources import Address, LiveResource

METAFLOW_CRON = {
    "kind": "CronWorkflow",
    "metadata": {"name": "trainflow"},
    "spec": {
        "schedule": "0 4 * * *",
        "failedJobsHistoryLimit": 10000,
        "startingDeadlineSeconds": 3540,
        "workflowSpec": {"workflowTemplateRef": {"name": "trainflow"}},
    },
}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"metadata": {"annotations": {"metaflow/flow_name": "TrainFlow"}}}, "Metaflow (flow TrainFlow)"),
        ({"metadata": {"annotations": {"metaflow.org/flow_name": "TrainFlow"}}}, "Metaflow (flow TrainFlow)"),
        ({"tags": {"metaflow/flow_name": "ReportFlow"}}, "Metaflow (flow ReportFlow)"),
        (METAFLOW_CRON, "Metaflow (the schedule of trainflow)"),
        ({**METAFLOW_CRON, "spec": {**METAFLOW_CRON["spec"], "workflowSpec": "odd"}}, "Metaflow (the schedule of ?)"),
        ({**METAFLOW_CRON, "spec": {**METAFLOW_CRON["spec"], "startingDeadlineSeconds": 60}}, None),
        ({"metadata": {"annotations": {"metaflow/flow_name": ""}}}, None),
        ({"metadata": "not a mapping", "tags": ["a"], "spec": []}, None),
        ({}, None),
    ],
)
def test_metaflow_is_recognised_by_its_markers_and_shape(body: dict[str, Any], expected: str | None) -> None:
    assert made_by(body) == expected


def test_the_argo_reader_records_who_made_an_object() -> None:
    obj = {**METAFLOW_CRON, "metadata": {"name": "trainflow", "namespace": "ns", "resourceVersion": "7"}}
    live = to_live("argo", kind_of("CronWorkflow"), obj)
    assert live.made_by == "Metaflow (the schedule of trainflow)"
    plain = to_live("argo", kind_of("CronWorkflow"), {"kind": "CronWorkflow", "metadata": {"name": "x"}, "spec": {}})
    assert plain.made_by is None


def test_the_step_functions_reader_records_who_made_an_object() -> None:
    address = Address("sfn", "StateMachine", "", "ReportFlow")
    found = Found(address, {"tags": {"metaflow/flow_name": "ReportFlow"}}, "v1", {"metaflow/flow_name": "ReportFlow"})
    assert found.live().made_by == "Metaflow (flow ReportFlow)"


def test_the_core_says_only_what_the_backend_recognised() -> None:
    """Metaflow's markers in a body mean nothing to the builder: only the reader's ``made_by`` counts."""
    address = Address("mem", "WorkflowTemplate", "ns", "train")
    body = {"metadata": {"annotations": {"metaflow/flow_name": "TrainFlow"}}}
    assert deployed_by(LiveResource(address, body, "1")) is None
    recognised = LiveResource(address, body, "1", made_by="Metaflow (flow TrainFlow)")
    assert deployed_by(recognised) == "deployed by Metaflow (flow TrainFlow)"
