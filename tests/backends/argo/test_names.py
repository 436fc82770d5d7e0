"""Physical names: the limits per kind, deterministic shortening, and collisions only after shortening."""

from __future__ import annotations

import hashlib
import textwrap

import pytest

from backends.argo import relative_path
from backends.argo.names import LIMITS, fit, k8s_name, label_value
from planner.errors import ManifestError
from tests.backends.argo.helpers import compile_text, find, of_kind


def test_short_names_are_kept() -> None:
    name = fit("recsys-prod-train", 52)
    assert (name.physical, name.shortened) == ("recsys-prod-train", False)
    assert fit("x" * 52, 52).physical == "x" * 52


@pytest.mark.parametrize("limit", sorted(set(LIMITS.values())))
def test_long_names_are_cut_with_a_hash_of_the_whole(limit: int) -> None:
    logical = "acme-prod-" + "a-very-long-flow-name-" * 4
    name = fit(logical, limit)
    digest = hashlib.sha256(logical.encode()).hexdigest()[:8]
    assert len(name.physical) <= limit
    assert name.physical.endswith("-" + digest)
    assert name.physical.startswith(logical[: limit - 12])
    assert "--" not in name.physical
    assert (name.logical, name.shortened) == (logical, True)
    assert fit(logical, limit) == name


def test_names_differing_only_at_the_end_stay_apart() -> None:
    head = "acme-prod-" + "x" * 60
    assert fit(head + "-one", 52).physical != fit(head + "-two", 52).physical


def test_k8s_name_and_label_value() -> None:
    assert k8s_name("recsys", "prod", "Train_Model") == "recsys-prod-train-model"
    assert label_value("Train_Model") == "Train_Model"
    long = "Flow_" + "x" * 70 + "_"
    value = label_value(long)
    assert len(value) <= 63 and value[-1].isalnum() and value.startswith("Flow_")


LONG_FLOW = "nightly_feature_backfill_for_every_region_and_every_model_family_v2"

LONG = f"""
version: 1
project: recommendations
flows:
  {LONG_FLOW}:
    image: img:1
    schedule: {{cron: "0 1 * * *"}}
    triggers: [{{after: short}}]
    steps:
      start: {{command: [run]}}
  short:
    image: img:1
    steps:
      start: {{command: [run]}}
"""


def test_long_flow_objects_are_shortened_and_still_reference_each_other() -> None:
    resources = compile_text(LONG)
    logical = k8s_name("recommendations", "prod", LONG_FLOW)
    template = find(resources, "WorkflowTemplate", fit(logical, 63).physical)
    cron = find(resources, "CronWorkflow", fit(logical, 52).physical)
    sensor = find(resources, "Sensor", fit(logical, 52).physical)
    for resource, limit in ((template, 63), (cron, 52), (sensor, 52)):
        assert len(resource.address.name) <= limit
        assert resource.body["metadata"]["annotations"]["flowplan.dev/logical-name"] == logical
        assert resource.body["metadata"]["labels"]["flowplan.dev/flow"] == label_value(LONG_FLOW)
        assert any("shortened" in note for note in resource.notes)
    assert cron.body["spec"]["workflowSpec"]["workflowTemplateRef"]["name"] == template.address.name
    submitted = sensor.body["spec"]["triggers"][0]["template"]["argoWorkflow"]["source"]["resource"]
    assert submitted["spec"]["workflowTemplateRef"]["name"] == template.address.name
    assert submitted["metadata"]["generateName"] == sensor.address.name + "-"
    assert template.address in cron.depends_on and template.address in sensor.depends_on
    untouched = find(resources, "WorkflowTemplate", "recommendations-prod-short")
    assert "flowplan.dev/logical-name" not in untouched.body["metadata"]["annotations"]


def _colliding_manifest() -> tuple[str, str]:
    """Flow B is named so that its natural name *is* flow A's shortened name."""
    long_flow = "a" * 70
    shortened = fit(k8s_name("acme", "prod", long_flow), 63).physical
    twin = shortened.removeprefix("acme-prod-")
    text = textwrap.dedent(
        f"""\
        version: 1
        project: acme
        flows:
          {long_flow}:
            image: img:1
            steps:
              start: {{command: [run]}}
          {twin}:
            image: img:1
            steps:
              start: {{command: [run]}}
        """
    )
    return text, twin


def test_a_collision_after_shortening_points_at_both_flows() -> None:
    text, twin = _colliding_manifest()
    with pytest.raises(ManifestError) as caught:
        compile_text(text)
    problems = caught.value.problems
    assert [(p.location.line, p.path) for p in problems] == [(4, "flows." + "a" * 70), (8, f"flows.{twin}")]
    assert all("WorkflowTemplate name" in p.message for p in problems)
    assert f"flow {twin!r}" in problems[0].message and f"flow {'a' * 70!r}" in problems[1].message


def test_a_hash_collision_is_reported_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two long names with the same head collide only if their hashes do; force that."""
    monkeypatch.setattr("backends.argo.names._digest", lambda text: "00000000")
    head = "b" * 60
    text = textwrap.dedent(
        f"""\
        version: 1
        project: acme
        schedules:
          daily: {{every: daily}}
        flows:
          {head}_one:
            image: img:1
            schedule: daily
            steps:
              start: {{command: [run]}}
          {head}_two:
            image: img:1
            schedule: daily
            steps:
              start: {{command: [run]}}
        """
    )
    with pytest.raises(ManifestError) as caught:
        compile_text(text)
    kinds = sorted(p.message.split(" name ")[0] for p in caught.value.problems)
    assert kinds == ["its CronWorkflow"] * 2 + ["its WorkflowTemplate"] * 2
    assert {p.location.line for p in caught.value.problems} == {6, 11}


def test_long_names_without_collision_compile() -> None:
    head = "c" * 60
    flows = "".join(
        f"""
  {head}_{suffix}:
    image: img:1
    schedule: {{every: daily}}
    steps:
      start: {{command: [run]}}
"""
        for suffix in ("one", "two")
    )
    resources = compile_text(f"version: 1\nproject: acme\nflows:{flows}")
    names = {r.address.name for r in of_kind(resources, "CronWorkflow")}
    assert len(names) == 2 and all(len(n) == 52 for n in names)


def test_relative_path() -> None:
    resources = compile_text(LONG)
    template = find(resources, "WorkflowTemplate", "recommendations-prod-short")
    assert relative_path(template) == "argo/workflowtemplate/recommendations-prod-short.yaml"
