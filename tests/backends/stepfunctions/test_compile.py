"""The Step Functions compiler: golden ASL, valid definitions, resources, markers, cron, names, refusals.

Pure: no AWS here. Every definition the compiler produces is checked with an
ASL validator written from the specification (``asl_validator.py``), because
moto accepts any definition. ``FLOWPLAN_UPDATE_GOLDEN=1`` rewrites the golden
files (review the diff!).
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from backends.stepfunctions.asl import BATCH_SUBMIT_SYNC
from backends.stepfunctions.compile import volatile_paths
from backends.stepfunctions.names import LIMITS, RULE_BASE_MAX, cut, rule_prefix
from planner.errors import ManifestError
from planner.resources import (
    BRANCH_KEY,
    FLOW_KEY,
    LOGICAL_NAME_KEY,
    MANAGED_BY_KEY,
    PROJECT_KEY,
    PROTECT_KEY,
    PROVENANCE_KEYS,
    SPEC_HASH_KEY,
    Resource,
    spec_hash,
)
from tests.backends.stepfunctions.asl_validator import validate
from tests.backends.stepfunctions.helpers import EXAMPLE_KINDS, REPO, compile_manifest, load

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("FLOWPLAN_UPDATE_GOLDEN") == "1"

BACKEND = """
backends:
  aws:
    type: stepfunctions
    stepfunctions:
      region: eu-west-1
      account_id: "123456789012"
      execution_role_arn: arn:aws:iam::123456789012:role/run
      events_role_arn: arn:aws:iam::123456789012:role/start
      job_queue: batch
"""


def manifest_text(flows: str, extra: str = "", project: str = "shop") -> str:
    body = textwrap.indent(textwrap.dedent(flows), "  ")
    return f"version: 1\nproject: {project}\n{BACKEND}{textwrap.dedent(extra)}\nflows:\n{body}"


def compile_text(tmp_path: Path, text: str, **kw: Any) -> list[Resource]:
    path = tmp_path / "flows.yaml"
    path.write_text(text)
    return compile_manifest(load(path, var_files=(), **kw))


def by_kind(resources: list[Resource], kind: str) -> dict[str, Resource]:
    return {r.address.name: r for r in resources if r.address.kind == kind}


def problems(exc: pytest.ExceptionInfo[ManifestError]) -> list[str]:
    return [str(p) for p in exc.value.problems]


# --------------------------------------------------------------------------- the example


def test_the_example_compiles_to_the_expected_resources() -> None:
    resources = compile_manifest(load())
    kinds: dict[str, int] = {}
    for r in resources:
        kinds[r.address.kind] = kinds.get(r.address.kind, 0) + 1
    assert kinds == EXAMPLE_KINDS
    assert [r.address for r in resources] == sorted(r.address for r in resources)
    machines = by_kind(resources, "StateMachine")
    assert sorted(machines) == ["recsys-prod-features", "recsys-prod-ingest", "recsys-prod-report", "recsys-prod-train"]
    assert sorted(by_kind(resources, "Rule")) == [
        "recsys-prod-features-after-ingest",
        "recsys-prod-ingest-on-raw-data-landed",
        "recsys-prod-report-after-train",
    ]
    assert sorted(by_kind(resources, "Schedule")) == ["recsys-prod-ingest", "recsys-prod-report", "recsys-prod-train"]
    assert sorted(by_kind(resources, "Parameter")) == [
        "flowplan.recsys.prod.sinks.feature-cache",
        "flowplan.recsys.prod.sinks.ranker-endpoint",
        "flowplan.recsys.prod.sinks.warehouse",
    ]
    # Same manifest, same bytes: compiling twice gives identical resources.
    assert [r.body for r in compile_manifest(load())] == [r.body for r in resources]


def test_golden_asl_of_the_example() -> None:
    machines = by_kind(compile_manifest(load()), "StateMachine")
    for name, machine in sorted(machines.items()):
        path = GOLDEN / f"{name}.asl.json"
        text = json.dumps(machine.body["definition"], indent=2, ensure_ascii=False) + "\n"
        if UPDATE or not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        assert text == path.read_text(), f"{path} differs; rerun with FLOWPLAN_UPDATE_GOLDEN=1 and review"


def test_every_example_definition_is_valid_asl() -> None:
    for machine in by_kind(compile_manifest(load()), "StateMachine").values():
        assert validate(machine.body["definition"]) == [], machine.address


def test_fan_out_and_foreach_become_parallel_and_map() -> None:
    machines = by_kind(compile_manifest(load()), "StateMachine")
    train = machines["recsys-prod-train"].body["definition"]
    fan_out = train["States"]["start: fan-out"]
    assert fan_out["Type"] == "Parallel"
    assert [b["StartAt"] for b in fan_out["Branches"]] == ["train-gbdt", "train-nn"]
    assert fan_out["Next"] == "evaluate"  # the join
    assert fan_out["ResultPath"] is None
    assert all(b["States"][b["StartAt"]]["End"] for b in fan_out["Branches"])
    gbdt = fan_out["Branches"][0]["States"]["train-gbdt"]
    assert gbdt["Resource"] == BATCH_SUBMIT_SYNC
    assert gbdt["TimeoutSeconds"] == 3 * 3600
    assert gbdt["Retry"][-1]["MaxAttempts"] == 1  # the step's retries, after the platform retrier
    features = machines["recsys-prod-features"].body["definition"]
    assert features["States"]["flowplan: foreach items"]["Parameters"]["foreach"] == {
        "build.$": "States.StringToJson($.parameters.regions)"
    }
    build = features["States"]["build: foreach"]
    assert build["Type"] == "Map" and build["ItemsPath"] == "$.foreach.build" and build["Next"] == "end"
    task = build["ItemProcessor"]["States"]["build"]
    env = {e["Name"]: e for e in task["Parameters"]["ContainerOverrides"]["Environment"]}
    assert env["FLOWPLAN_FOREACH_ITEM"]["Value.$"] == "States.Format('{}', $.item)"
    assert env["FLOWPLAN_PARAM_REGIONS"]["Value.$"] == "States.Format('{}', $.parameters.regions)"
    assert env["FLOWPLAN_STEP"]["Value"] == "build" and env["FLOWPLAN_RUN_ID"]["Value.$"] == "$$.Execution.Name"


def test_parameters_default_inside_the_machine() -> None:
    machine = by_kind(compile_manifest(load()), "StateMachine")["recsys-prod-train"]
    states = machine.body["definition"]["States"]
    assert machine.body["definition"]["StartAt"] == "flowplan: defaults"
    assert states["flowplan: defaults"]["Parameters"] == {
        "defaults": {"epochs": "20", "learning_rate": "0.001"},
        "input.$": "$",
    }
    assert states["flowplan: parameters"]["Parameters"] == {
        "parameters.$": "States.JsonMerge($.defaults, $.input, false)"
    }


def test_graphs_of_every_shape_compile_to_valid_asl(tmp_path: Path) -> None:
    flows = """
    nested:
      image: img
      parameters: {items: {default: [1, 2], type: list}, mode: fast}
      steps:
        a: {command: [a], next: [b, c, d]}
        b: {command: [b], next: [b1, b2]}
        b1: {command: [b1], foreach: [x, 2, true], next: bj}
        b2: {command: [b2], next: bj}
        bj: {command: [bj], next: j}
        c: {command: [c], foreach: {parameter: items}, next: j}
        d: {command: [d], next: d2}
        d2: {command: [d2], next: j}
        j: {command: [j], retries: 4, timeout: 90s}
    single:
      image: img
      steps:
        only: {command: "echo one", resources: {cpu: 250m, memory: 1G, gpu: 2}}
    Long_Step_Names:
      image: img
      steps:
        STEP_with_a_very_long_name_that_goes_on_and_on_well_past_the_eighty_character_limit_of_state_names:
          command: [x]
          next: [b, c]
        b: {command: [b], next: e}
        c: {command: [c], foreach: [1], next: e}
        e: {command: [e]}
    """
    machines = by_kind(compile_text(tmp_path, manifest_text(flows)), "StateMachine")
    assert len(machines) == 3
    for machine in machines.values():
        assert validate(machine.body["definition"]) == [], (machine.address, validate(machine.body["definition"]))
    nested = machines["shop-prod-nested"].body["definition"]["States"]
    outer = nested["a: fan-out"]
    assert [b["StartAt"] for b in outer["Branches"]] == ["b", "c: foreach", "d"]
    inner = outer["Branches"][0]["States"]["b: fan-out"]
    assert inner["Type"] == "Parallel" and inner["Next"] == "bj"
    assert nested["flowplan: foreach items"]["Parameters"]["foreach"] == {
        "b1": ["x", "2", "true"],
        "c.$": "States.StringToJson($.parameters.items)",
    }
    long_states = machines["shop-prod-Long_Step_Names"].body["definition"]["States"]
    assert all(len(name) <= 80 for name in long_states)


# --------------------------------------------------------------------------- markers, dependencies, bodies


def test_markers_are_tags_in_the_body_and_volatile_where_they_should_be() -> None:
    resources = compile_manifest(load())
    train = by_kind(resources, "StateMachine")["recsys-prod-train"]
    tags = train.body["tags"]
    assert tags[MANAGED_BY_KEY] == "flowplan"
    assert (tags[PROJECT_KEY], tags[BRANCH_KEY], tags[FLOW_KEY]) == ("recsys", "prod", "train")
    assert tags[PROTECT_KEY] == "true" and train.protect
    assert tags["team"] == "ml" and tags["tier"] == "critical"
    assert all(key in tags for key in PROVENANCE_KEYS)
    assert tags[SPEC_HASH_KEY] == train.spec_hash == spec_hash(train.body, volatile_paths("StateMachine"))
    assert set(train.volatile_paths) == {f"/tags/{k.replace('/', '~1')}" for k in (SPEC_HASH_KEY, *PROVENANCE_KEYS)}
    for resource in resources:
        if resource.address.kind == "Schedule":
            assert "Tags" not in resource.body and resource.volatile_paths == ()
        else:
            assert resource.body[("tags" if resource.address.kind in ("StateMachine", "JobDefinition") else "Tags")]
    group = by_kind(resources, "ScheduleGroup")["recsys-prod"]
    assert FLOW_KEY not in group.body["Tags"] and group.body["Tags"][PROJECT_KEY] == "recsys"


def test_a_new_commit_changes_no_spec_hash(tmp_path: Path) -> None:
    from backends.stepfunctions.compile import StepFunctionsCompiler
    from planner.contract import CompileContext
    from planner.resources import Provenance

    manifest = load()
    one = StepFunctionsCompiler().compile(CompileContext(manifest, manifest.backends["aws"], Provenance("1", "a", "b")))
    two = StepFunctionsCompiler().compile(CompileContext(manifest, manifest.backends["aws"], Provenance("2", "c", "d")))
    assert [r.spec_hash for r in one] == [r.spec_hash for r in two]
    assert [r.body for r in one] != [r.body for r in two]


def test_dependencies_order_the_apply() -> None:
    resources = {str(r.address): r for r in compile_manifest(load())}
    schedule = resources["aws.Schedule.eu-west-1/recsys-prod-train"]
    assert [str(a) for a in schedule.depends_on] == [
        "aws.ScheduleGroup.eu-west-1/recsys-prod",
        "aws.StateMachine.eu-west-1/recsys-prod-train",
    ]
    rule = resources["aws.Rule.eu-west-1/recsys-prod-report-after-train"]
    assert [str(a) for a in rule.depends_on] == ["aws.StateMachine.eu-west-1/recsys-prod-report"]
    machine = resources["aws.StateMachine.eu-west-1/recsys-prod-report"]
    assert [a.kind for a in machine.depends_on] == ["JobDefinition"]
    job = resources[str(machine.depends_on[0])]
    assert [str(a) for a in job.depends_on] == ["aws.Parameter.eu-west-1/flowplan.recsys.prod.sinks.warehouse"]


def test_job_definitions_round_resources_up_and_carry_sinks() -> None:
    jobs = by_kind(compile_manifest(load()), "JobDefinition")
    start = next(j for name, j in jobs.items() if name.startswith("recsys-prod-ingest-start-"))
    container = start.body["containerProperties"]
    assert container["resourceRequirements"] == [{"type": "MEMORY", "value": "1024"}, {"type": "VCPU", "value": "1"}]
    assert start.notes[0] == "step 'start': cpu 500m is 1 vCPU (Batch on EC2 counts whole vCPUs)"
    assert container["executionRoleArn"] == "arn:aws:iam::123456789012:role/flowplan-sfn-execution"
    assert "ecs-tasks.amazonaws.com" in start.notes[1]
    assert container["secrets"] == [
        {
            "name": "FLOWPLAN_SINK_WAREHOUSE_CREDENTIALS",
            "valueFrom": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:snowflake-writer",
        }
    ]
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env == {
        "FLOWPLAN_SINKS": "warehouse",
        "FLOWPLAN_SINK_WAREHOUSE_PARAMETER": "/flowplan/recsys/prod/sinks/warehouse",
    }
    nn = next(j for name, j in jobs.items() if name.startswith("recsys-prod-train-train-nn-"))
    assert nn.body["containerProperties"]["resourceRequirements"][0] == {"type": "GPU", "value": "1"}
    report = next(j for name, j in jobs.items() if name.startswith("recsys-prod-report-start-"))
    assert report.notes[0] == "step 'start': no cpu given: 1 vCPU; no memory given: 2048 MiB"
    assert all(len(name) <= LIMITS["JobDefinition"] for name in jobs)


def test_sink_parameters_hold_the_non_secret_settings() -> None:
    parameters = by_kind(compile_manifest(load()), "Parameter")
    warehouse = parameters["flowplan.recsys.prod.sinks.warehouse"].body
    assert warehouse["Name"] == "/flowplan/recsys/prod/sinks/warehouse"
    assert warehouse["Value"] == {
        "type": "warehouse",
        "uri": "snowflake://acme.eu-central-1/ANALYTICS",
        "table": "recommendations",
    }
    cache = parameters["flowplan.recsys.prod.sinks.feature-cache"].body["Value"]
    assert cache["key_prefix"] == "features/recsys/prod/" and cache["ttl"] == 172800


def test_targets_carry_the_role_and_the_input() -> None:
    resources = compile_manifest(load())
    rules = by_kind(resources, "Rule")
    event = rules["recsys-prod-ingest-on-raw-data-landed"].body
    target = event["Targets"][0]
    assert target["Arn"] == "arn:aws:states:eu-west-1:123456789012:stateMachine:recsys-prod-ingest:live"
    assert target["RoleArn"] == "arn:aws:iam::123456789012:role/flowplan-events"
    assert target["InputTransformer"] == {
        "InputPathsMap": {"input_key": "$.detail.key"},
        "InputTemplate": '{"input_key":"<input_key>"}',
    }
    assert event["EventPattern"] == {
        "source": ["s3"],
        "detail-type": ["object-created"],
        "detail": {"bucket": ["acme-raw"], "key": [{"prefix": "partners/"}]},
    }
    after = rules["recsys-prod-features-after-ingest"].body
    assert after["EventBusName"] == "default"
    assert after["Targets"][0]["Input"] == {"regions": '["eu","us","apac"]'}
    upstream = "arn:aws:states:eu-west-1:123456789012:stateMachine:recsys-prod-ingest"
    assert after["EventPattern"]["detail"] == {
        "status": ["SUCCEEDED"],
        "stateMachineArn": [upstream, {"prefix": upstream + ":"}],
    }
    schedule = by_kind(resources, "Schedule")["recsys-prod-train"].body
    assert schedule["Target"]["Input"] == {"epochs": "20", "learning_rate": "0.001"}
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["Target"]["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}


# --------------------------------------------------------------------------- cron, time zones, suspension


def test_cron_is_translated_with_its_time_zone() -> None:
    schedules = by_kind(compile_manifest(load()), "Schedule")
    expected = {
        "recsys-prod-ingest": ("cron(0 * * * ? *)", "UTC"),
        "recsys-prod-train": ("cron(30 2 * * ? *)", "Europe/Berlin"),
        "recsys-prod-report": ("cron(0 7 ? * MON *)", "America/New_York"),
    }
    for name, (expression, zone) in expected.items():
        body = schedules[name].body
        assert (body["ScheduleExpression"], body["ScheduleExpressionTimezone"], body["State"]) == (
            expression,
            zone,
            "ENABLED",
        )
        assert body["GroupName"] == "recsys-prod"


def test_schedules_are_disabled_off_prod_unless_enabled(tmp_path: Path) -> None:
    staging = by_kind(compile_manifest(load(branch="staging")), "Schedule")
    assert {s.body["State"] for s in staging.values()} == {"DISABLED"}
    assert any("not prod" in note for s in staging.values() for note in s.notes)
    enabled = by_kind(compile_manifest(load(branch="staging", enable_schedules=True)), "Schedule")
    assert {s.body["State"] for s in enabled.values()} == {"ENABLED"}
    flows = """
    paused:
      image: img
      schedule: {cron: "15 6 * * 0,7", timezone: Asia/Tokyo, suspend: true, starting_deadline: 10s}
      steps: {start: {command: [x]}}
    """
    schedule = by_kind(compile_text(tmp_path, manifest_text(flows)), "Schedule")["shop-prod-paused"]
    assert schedule.body["State"] == "DISABLED"
    assert schedule.body["ScheduleExpression"] == "cron(15 6 ? * SUN *)"  # day-of-week 0 and 7 are both Sunday
    assert schedule.body["Target"]["RetryPolicy"]["MaximumEventAgeInSeconds"] == 60
    assert any("starting_deadline 10s is 60s" in n for n in schedule.notes)


def test_a_cron_restricting_both_days_is_refused_at_the_schedule(tmp_path: Path) -> None:
    flows = """
    monthly:
      image: img
      schedule: {cron: "0 6 1 * MON"}
      steps: {start: {command: [x]}}
    """
    text = manifest_text(flows)
    with pytest.raises(ManifestError) as info:
        compile_text(tmp_path, text)
    (problem,) = info.value.problems
    assert problem.path == "flows.monthly.schedule.cron"
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "schedule: {cron" in row)
    assert problem.location.line == line and "either" in problem.message
    assert "split it into two schedules" in (problem.hint or "")


def test_the_repository_manifest_on_step_functions_is_refused_with_reasons(tmp_path: Path) -> None:
    data = yaml.safe_load((REPO / "flows.yaml").read_text())
    data["backends"] = yaml.safe_load(BACKEND)["backends"]
    (tmp_path / "flows.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ManifestError) as info:
        compile_manifest(load(tmp_path / "flows.yaml", var_files=()))
    found = {p.path: p for p in info.value.problems}
    assert set(found) == {
        "schedules.nightly.concurrency",
        "schedules.hourly.concurrency",
        "flows.ingest.sinks",
        "flows.train.sinks",
        "flows.report.sinks",
    }
    assert "concurrency: forbid cannot be enforced on Step Functions" in found["schedules.nightly.concurrency"].message
    assert "allow is the only value" in (found["schedules.hourly.concurrency"].hint or "")
    assert "Kubernetes Secret 'snowflake-writer'" in found["flows.ingest.sinks"].message
    assert "arn:" in (found["flows.ingest.sinks"].hint or "")


def test_a_files_backend_rendering_step_functions_uses_this_compiler(tmp_path: Path) -> None:
    text = (REPO / "examples" / "stepfunctions" / "flows.yaml").read_text()
    files_backend = """backends:
  gitops:
    type: files
    render: stepfunctions
    path: deploy
    stepfunctions:"""
    text = text.replace(
        'backends:\n  aws:\n    type: stepfunctions\n    endpoint_url: "{{ vars.endpoint_url }}"\n    stepfunctions:',
        files_backend,
    )
    (tmp_path / "flows.yaml").write_text(text)
    from planner.cli import run
    from tests.backends.stepfunctions.helpers import EXAMPLE_VARS, Result  # noqa: F401

    args = ["-f", str(tmp_path / "flows.yaml"), "--var-file", str(EXAMPLE_VARS)]
    assert run(["apply", "--auto-approve", *args]) == 0
    rendered = sorted(str(p.relative_to(tmp_path / "deploy")) for p in (tmp_path / "deploy").rglob("*.yaml"))
    assert len(rendered) == sum(EXAMPLE_KINDS.values())
    assert "eu-west-1/statemachine/recsys-prod-train.yaml" in rendered
    assert "eu-west-1/parameter/flowplan.recsys.prod.sinks.warehouse.yaml" in rendered
    machine = yaml.safe_load((tmp_path / "deploy/eu-west-1/statemachine/recsys-prod-train.yaml").read_text())
    assert machine["definition"]["States"]["start: fan-out"]["Type"] == "Parallel"
    assert run(["plan", "--detailed-exitcode", *args]) == 0


# --------------------------------------------------------------------------- names


def test_long_names_are_cut_with_a_hash_and_keep_their_logical_name(tmp_path: Path) -> None:
    long = "recommendation_candidate_generation_with_a_name_that_is_far_too_long"
    flows = f"""
    {long}:
      image: img
      schedule: {{cron: "0 1 * * *"}}
      triggers: [{{after: short}}]
      steps: {{start: {{command: [x]}}}}
    short:
      image: img
      steps: {{start: {{command: [x]}}}}
    """
    resources = compile_text(tmp_path, manifest_text(flows, project="a-fairly-long-project-name"), branch="feature-x")
    base = "a-fairly-long-project-name-feature-x"
    machine = by_kind(resources, "StateMachine")[cut(f"{base}-{long}", 80)]
    assert len(machine.address.name) == 80 and machine.address.name != f"{base}-{long}"
    assert machine.body["tags"][LOGICAL_NAME_KEY] == f"{base}-{long}"
    assert any("name shortened" in n for n in machine.notes)
    (rule,) = by_kind(resources, "Rule")
    assert len(rule) <= 64 and rule.startswith(rule_prefix(base))
    (schedule,) = by_kind(resources, "Schedule")
    assert len(schedule) <= 64
    for resource in resources:
        assert validate(resource.body["definition"]) == [] if resource.address.kind == "StateMachine" else True
    assert len(rule_prefix("p" * 60)) == RULE_BASE_MAX + 1


def test_names_that_collide_once_cut_name_both_flows(tmp_path: Path) -> None:
    long = "x" * 90
    clash = cut(f"shop-prod-{long}", 80)[len("shop-prod-") :]
    flows = f"""
    {long}:
      image: img
      steps: {{start: {{command: [x]}}}}
    {clash}:
      image: img
      steps: {{start: {{command: [x]}}}}
    """
    with pytest.raises(ManifestError) as info:
        compile_text(tmp_path, manifest_text(flows))
    found = [p for p in info.value.problems if "StateMachine" in p.message]
    assert sorted(p.path for p in found) == sorted([f"flows.{long}", f"flows.{clash}"])
    assert found[0].location.line != found[1].location.line
    assert all("rename one of them" in (p.hint or "") for p in found)


# --------------------------------------------------------------------------- other refusals


def test_schedules_and_triggers_need_an_events_role(tmp_path: Path) -> None:
    text = manifest_text(
        """
        nightly:
          image: img
          schedule: {cron: "0 1 * * *"}
          steps: {start: {command: [x]}}
        """
    ).replace("      events_role_arn: arn:aws:iam::123456789012:role/start\n", "")
    with pytest.raises(ManifestError) as info:
        compile_text(tmp_path, text)
    assert "events_role_arn" in (info.value.problems[0].hint or "")


def test_parameters_sharing_an_environment_variable_are_refused(tmp_path: Path) -> None:
    flows = """
    f:
      image: img
      parameters: {mode: a, MODE: b}
      steps: {start: {command: [x]}}
    """
    with pytest.raises(ManifestError) as info:
        compile_text(tmp_path, manifest_text(flows))
    assert "FLOWPLAN_PARAM_MODE" in info.value.problems[0].message


def test_the_compiler_imports_no_sdk() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import backends.stepfunctions.compile, backends.stepfunctions.normalize; "
        "import backends.stepfunctions; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')); "
        "assert not bad, bad"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
