"""What the compiler decides: markers, schedules, suspension, sinks, event filters, the after: wiring, errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from backends.argo.compile import VOLATILE_PATHS
from backends.argo.cron import argo_cron
from backends.argo.filters import data_filter, go_quote_meta
from backends.argo.names import k8s_name
from planner.errors import ManifestError
from planner.manifest import EventFilter
from planner.resources import Resource, get_pointer
from planner.schedule import CronError, parse_cron
from tests.backends.argo.helpers import CASES, REPO, compile_text, find, of_kind
from tests.planner.test_schedule import random_expressions


def _manifest(flows: str, extra: str = "") -> str:
    return f"version: 1\nproject: acme\n{textwrap.dedent(extra)}flows:\n{textwrap.indent(textwrap.dedent(flows), '  ')}"


def _line(text: str, needle: str) -> int:
    """The 1-based line of the first occurrence of ``needle`` in ``text``."""
    return text[: text.index(needle)].count("\n") + 1


# --------------------------------------------------------------------------- markers and resource fields


def test_markers_hash_and_volatile_paths_on_every_object() -> None:
    for case in CASES.values():
        manifest = case.load()
        for resource in case.compile():
            labels = resource.body["metadata"]["labels"]
            annotations = resource.body["metadata"]["annotations"]
            assert labels["app.kubernetes.io/managed-by"] == "flowplan"
            assert (labels["flowplan.dev/project"], labels["flowplan.dev/branch"]) == (
                manifest.project,
                manifest.branch,
            )
            assert ("flowplan.dev/flow" in labels) == (resource.flow is not None)
            assert annotations["flowplan.dev/spec-hash"] == resource.spec_hash
            assert resource.volatile_paths == VOLATILE_PATHS
            for pointer in VOLATILE_PATHS[:3]:
                assert get_pointer(resource.body, pointer)
            if resource.flow is not None:
                assert resource.protect == manifest.flows[resource.flow].protect


def test_markers_win_over_tags_and_settings_labels() -> None:
    text = _manifest(
        """
        f:
          image: img:1
          tags: {"flowplan.dev/flow": other, team: data}
          steps: {start: {command: [run]}}
        """,
        """
        backends:
          k8s:
            type: argo
            argo: {namespace: jobs, labels: {"app.kubernetes.io/managed-by": helm, team: platform, env: prod}}
        """,
    )
    labels = find(compile_text(text), "WorkflowTemplate").body["metadata"]["labels"]
    assert labels["flowplan.dev/flow"] == "f"
    assert labels["app.kubernetes.io/managed-by"] == "flowplan"
    assert (labels["team"], labels["env"]) == ("data", "prod")


def test_protect_is_a_label_on_every_object_of_the_flow() -> None:
    resources = CASES["triggers"].compile()
    for resource in resources:
        protected = resource.protect
        assert (resource.body["metadata"]["labels"].get("flowplan.dev/protect") == "true") == protected
    assert sum(r.protect for r in resources) == 3


def test_sensitive_values_are_inline_and_pointed_at() -> None:
    resources = CASES["triggers"].compile()
    sentinel = "xoxb-test-sentinel"
    for resource in resources:
        text = json.dumps(resource.body)
        pointed = [get_pointer(resource.body, p) for p in resource.sensitive_paths]
        assert text.count(sentinel) == len(pointed)
        assert all(value == sentinel for value in pointed)
    template = find(resources, "WorkflowTemplate", "65f29e54")
    env = template.body["spec"]["templates"][1]["container"]["env"]
    assert {"name": "SLACK_TOKEN", "value": sentinel} in env


def test_a_sensitive_var_in_a_mapped_parameter_default_is_pointed_at_in_the_sensor_too() -> None:
    text = _manifest(
        """
        f:
          image: img:1
          parameters: {token: "{{ vars.token }}"}
          triggers: [{event: e}]
          steps: {start: {command: [run]}}
        """,
        """
        vars: {token: {sensitive: true}}
        events: {e: {source: s, type: t, parameters: {token: auth.token}}}
        """,
    )
    resources = compile_text(text, cli_vars={"token": "hunter2-sentinel"})
    assert find(resources, "Sensor").sensitive_paths == (
        "/spec/triggers/0/template/argoWorkflow/source/resource/spec/arguments/parameters/0/value",
    )
    assert find(resources, "WorkflowTemplate").sensitive_paths == ("/spec/arguments/parameters/0/value",)


# --------------------------------------------------------------------------- steps


def test_step_container_details() -> None:
    text = _manifest(
        """
        f:
          image: img:1
          parameters: {n: 2, names: {default: [a, b], type: list}}
          steps:
            start:
              command: "echo $FLOWPLAN_PARAM_N"
              resources: {cpu: 500m, memory: 1Gi, gpu: 2}
              retries: 4
              timeout: 1h
              env: {B: "2", A: "1"}
              next: each
            each:
              command: [run, each]
              foreach: [1, two, true]
              next: end
            end: {command: [run, end], foreach: {parameter: names}}
        """
    )
    spec = find(compile_text(text), "WorkflowTemplate").body["spec"]
    start, each, end = spec["templates"][1:]
    assert start["container"]["command"] == ["sh", "-c", "echo $FLOWPLAN_PARAM_N"]
    assert start["container"]["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"memory": "1Gi", "nvidia.com/gpu": "2"},
    }
    assert start["retryStrategy"] == {"limit": "4", "retryPolicy": "Always"}
    assert start["activeDeadlineSeconds"] == 3600
    names = [e["name"] for e in start["container"]["env"]]
    assert names == [
        "FLOWPLAN_PROJECT",
        "FLOWPLAN_BRANCH",
        "FLOWPLAN_FLOW",
        "FLOWPLAN_STEP",
        "FLOWPLAN_RUN_ID",
        "FLOWPLAN_PARAM_N",
        "FLOWPLAN_PARAM_NAMES",
        "A",
        "B",
    ]
    assert "resources" not in each["container"] and "retryStrategy" not in each
    tasks = spec["templates"][0]["dag"]["tasks"]
    assert tasks[1]["withItems"] == [1, "two", True]
    assert tasks[2]["withParam"] == "{{workflow.parameters.names}}"
    assert {"name": "FLOWPLAN_FOREACH_ITEM", "value": "{{inputs.parameters.item}}"} in end["container"]["env"]
    assert spec["arguments"]["parameters"] == [{"name": "n", "value": "2"}, {"name": "names", "value": '["a","b"]'}]


def test_dag_follows_the_step_graph() -> None:
    spec = find(CASES["repo_flows"].compile(), "WorkflowTemplate", "train").body["spec"]
    tasks = {t["name"]: t.get("dependencies", []) for t in spec["templates"][0]["dag"]["tasks"]}
    assert list(tasks) == ["start", "train-gbdt", "train-nn", "evaluate", "end"]
    assert tasks == {
        "start": [],
        "train-gbdt": ["start"],
        "train-nn": ["start"],
        "evaluate": ["train-gbdt", "train-nn"],
        "end": ["evaluate"],
    }
    assert spec["templates"][0]["dag"]["tasks"][1]["template"] == "step-train-gbdt"


# --------------------------------------------------------------------------- schedules


def test_non_production_branches_deploy_schedules_suspended() -> None:
    dev = find(CASES["branch_dev"].compile(), "CronWorkflow", "train")
    assert dev.body["spec"]["suspend"] is True
    assert any("--enable-schedules" in note for note in dev.notes)
    prod = find(CASES["repo_flows"].compile(), "CronWorkflow", "train")
    assert prod.body["spec"]["suspend"] is False and not prod.notes


def test_enable_schedules_and_suspend_flag() -> None:
    text = _manifest(
        """
        f:
          image: img:1
          schedule: {cron: "0 1 * * *", suspend: true, concurrency: replace, starting_deadline: 2m}
          steps: {start: {command: [run]}}
        g:
          image: img:1
          schedule: {every: hourly}
          steps: {start: {command: [run]}}
        """
    )
    resources = compile_text(text, branch="dev", enable_schedules=True)
    f, g = find(resources, "CronWorkflow", "-f"), find(resources, "CronWorkflow", "-g")
    assert f.body["spec"]["suspend"] is True
    assert g.body["spec"]["suspend"] is False
    assert f.body["spec"]["concurrencyPolicy"] == "Replace"
    assert f.body["spec"]["startingDeadlineSeconds"] == 120
    assert "startingDeadlineSeconds" not in g.body["spec"]


@pytest.mark.parametrize(
    ("written", "argo"),
    [
        ("0 6 * * 7", "0 6 * * 0"),
        ("0 6 * * 5-7", "0 6 * * 0,5-6"),
        ("0 6 * * 1-7/2", "0 6 * * 0-1,3,5"),
        ("0 6 * * 3,7", "0 6 * * 0,3"),
        ("0 6 * * sat-7", "0 6 * * 0,6"),
        ("0 6 * * 0-7", "0 6 * * 0-6"),
        ("0 6 1 * 7", "0 6 1 * 0"),
        ("0 6 * * */7", "0 6 * * */7"),
        ("30  2 * * MON", "30  2 * * MON"),
        ("0 6 * * 0", "0 6 * * 0"),
    ],
)
def test_day_of_week_seven(written: str, argo: str) -> None:
    assert argo_cron(written) == argo


def test_day_of_week_translation_keeps_fire_times() -> None:
    """Over many random expressions: no 7 survives, and the parsed schedule is the same."""
    for text in random_expressions(seed=7, count=3000):
        try:
            before = parse_cron(text)
        except CronError:
            continue
        after = parse_cron(argo_cron(text))
        assert not re.search(r"(^|[,-])0*7($|[,/-])", after.fields[4]), text
        assert after.fields[:4] == before.fields[:4]
        assert (after.days_of_week, after.dow_restricted, after.dom_restricted) == (
            before.days_of_week,
            before.dow_restricted,
            before.dom_restricted,
        )


# --------------------------------------------------------------------------- sinks


def test_sinks_configmaps_env_and_secrets() -> None:
    resources = CASES["repo_flows"].compile()
    assert {r.address.name for r in of_kind(resources, "ConfigMap")} == {
        "recsys-prod-sink-warehouse",
        "recsys-prod-sink-feature-cache",
        "recsys-prod-sink-ranker-endpoint",
    }
    train = find(resources, "WorkflowTemplate", "train")
    container = train.body["spec"]["templates"][1]["container"]
    assert container["envFrom"] == [
        {"configMapRef": {"name": "recsys-prod-sink-warehouse"}},
        {"configMapRef": {"name": "recsys-prod-sink-ranker-endpoint"}},
    ]
    env = {e["name"]: e for e in container["env"]}
    assert env["FLOWPLAN_SINKS"]["value"] == "warehouse,ranker-endpoint"
    assert env["FLOWPLAN_SINK_WAREHOUSE_CREDENTIALS"]["valueFrom"] == {
        "secretKeyRef": {"name": "snowflake-writer", "key": "password"}
    }
    assert "FLOWPLAN_SINK_RANKER_ENDPOINT_CREDENTIALS" not in env
    dev_cache = find(CASES["branch_dev"].compile(), "ConfigMap", "feature-cache").body["data"]
    assert dev_cache == {
        "FLOWPLAN_SINK_FEATURE_CACHE_KEY_PREFIX": "features/recsys/dev/",
        "FLOWPLAN_SINK_FEATURE_CACHE_TTL": "172800",
        "FLOWPLAN_SINK_FEATURE_CACHE_TYPE": "cache",
        "FLOWPLAN_SINK_FEATURE_CACHE_URI": "redis://features.cache.svc:6379/0",
    }
    assert set(train.depends_on) == {
        r.address for r in of_kind(resources, "ConfigMap") if not r.address.name.endswith("feature-cache")
    }


_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db"


def test_aws_only_credentials_cannot_run_on_argo() -> None:
    text = _manifest(
        """
        f:
          image: img:1
          sinks: [db]
          steps: {start: {command: [run]}}
        """,
        f"""
        sinks:
          db: {{type: warehouse, uri: "pg://db/x", table: t, credentials: {{arn: "{_ARN}"}}}}
        """,
    )
    with pytest.raises(ManifestError) as caught:
        compile_text(text)
    (problem,) = caught.value.problems
    assert (problem.location.line, problem.path) == (_line(text, "f:"), "flows.f.sinks")
    assert "Secrets Manager" in problem.message and "secret: NAME" in (problem.hint or "")


def test_unused_sinks_get_no_configmap() -> None:
    text = _manifest(
        "f: {image: img:1, steps: {start: {command: [run]}}}\n",
        "sinks: {c: {type: cache, uri: 'redis://x', key_prefix: p/}}\n",
    )
    assert of_kind(compile_text(text), "ConfigMap") == []


# --------------------------------------------------------------------------- events and filters


def _filter(op: str, value: Any = None) -> dict[str, Any]:
    return data_filter(EventFilter("a.b", op, value))


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", "x.y", {"type": "string", "value": [r"^x\.y$"]}),
        ("eq", 5, {"type": "number", "value": ["5"]}),
        ("eq", True, {"type": "bool", "value": ["true"]}),
        ("ne", "x", {"type": "string", "value": ["^x$"], "comparator": "!="}),
        ("ne", 2.5, {"type": "number", "value": ["2.5"], "comparator": "!="}),
        ("ne", True, {"type": "bool", "value": ["false"]}),
        ("in", ["a", "b+"], {"type": "string", "value": ["^a$", r"^b\+$"]}),
        ("in", [1, 2], {"type": "number", "value": ["1", "2"]}),
        ("in", [1, "a"], {"type": "string", "value": ["^1$", "^a$"]}),
        ("prefix", "logs/(x)", {"type": "string", "value": [r"^logs/\(x\)"]}),
        ("exists", None, {"type": "string", "value": [".*"]}),
        ("gt", 1, {"type": "number", "value": ["1"], "comparator": ">"}),
        ("gte", 1, {"type": "number", "value": ["1"], "comparator": ">="}),
        ("lt", 1, {"type": "number", "value": ["1"], "comparator": "<"}),
        ("lte", 0.5, {"type": "number", "value": ["0.5"], "comparator": "<="}),
    ],
)
def test_filter_ops(op: str, value: Any, expected: dict[str, Any]) -> None:
    assert _filter(op, value) == {"path": "body.data.a.b", **expected}


@pytest.mark.parametrize(
    ("text", "near_misses"),
    [
        ("acme (eu)", ["acme eu", "xacme (eu)", "acme (eu)x"]),
        ("a.b*c?[d]{e}|f^$\\", ["aXb*c?[d]{e}|f^$\\", "a.bbc?[d]{e}|f^$\\"]),
        ("", ["x"]),
    ],
)
def test_escaped_values_match_only_themselves(text: str, near_misses: list[str]) -> None:
    """Go's RE2 and Python agree on escaped literals and ^…$, so Python's re stands in for Argo Events."""
    (pattern,) = _filter("eq", text)["value"]
    assert re.search(pattern, text)
    for miss in near_misses:
        assert not re.search(pattern, miss), miss
    assert go_quote_meta(r"1+1=2. [x] {y} (z) a|b ^c$ \d") == r"1\+1=2\. \[x\] \{y\} \(z\) a\|b \^c\$ \\d"


def test_filters_without_an_argo_equivalent_are_refused() -> None:
    text = _manifest(
        """
        f:
          image: img:1
          triggers: [{event: e}]
          steps: {start: {command: [run]}}
        """,
        """
        events:
          e:
            source: s
            type: t
            filters:
              - {path: a, op: eq, value: [1, 2]}
              - {path: b, op: in, value: []}
        """,
    )
    with pytest.raises(ManifestError) as caught:
        compile_text(text)
    assert [(p.path, p.location.line) for p in caught.value.problems] == [
        ("events.e.filters[0]", _line(text, "{path: a")),
        ("events.e.filters[1]", _line(text, "{path: b")),
    ]


def test_one_sensor_trigger_per_dependency_each_with_its_condition() -> None:
    sensor = find(CASES["triggers"].compile(), "Sensor", "reconcile").body["spec"]
    assert [d["name"] for d in sensor["dependencies"]] == ["after-settle", "event-chargeback-filed"]
    assert [(t["template"]["name"], t["template"]["conditions"]) for t in sensor["triggers"]] == [
        ("after-settle", "after-settle"),
        ("event-chargeback-filed", "event-chargeback-filed"),
    ]
    event = sensor["dependencies"][1]
    assert (event["eventSourceName"], event["eventName"]) == ("company-events", "inbound")
    assert event["filters"]["data"][:2] == [
        {"path": "body.source", "type": "string", "value": ["^processor$"]},
        {"path": "body.type", "type": "string", "value": [r"^chargeback\.created$"]},
    ]


# --------------------------------------------------------------------------- after:


def _after_wiring(resources: list[Resource]) -> tuple[Resource, dict[str, Resource], list[tuple[str, dict[str, Any]]]]:
    source = find(resources, "EventSource")
    templates = {r.flow or "": r for r in of_kind(resources, "WorkflowTemplate")}
    dependencies = [
        (r.flow or "", d)
        for r in of_kind(resources, "Sensor")
        for d in r.body["spec"]["dependencies"]
        if d["name"].startswith("after-")
    ]
    return source, templates, dependencies


@pytest.mark.parametrize("case", ["repo_flows", "branch_dev", "triggers"])
def test_after_objects_reference_each_other(case: str) -> None:
    manifest = CASES[case].load()
    resources = CASES[case].compile()
    source, templates, dependencies = _after_wiring(resources)
    webhook = source.body["spec"]["webhook"]["finished"]
    upstreams = {flow for flow in templates if manifest.downstream_of(flow)}
    assert upstreams and {f for f, t in templates.items() if "onExit" in t.body["spec"]} == upstreams
    for flow in upstreams:
        spec = templates[flow].body["spec"]
        handler = next(t for t in spec["templates"] if t["name"] == spec["onExit"])
        expected_url = (
            f"http://{source.address.name}-eventsource-svc.{source.address.namespace}.svc:{webhook['port']}"
            f"{webhook['endpoint']}"
        )
        assert handler["http"]["url"] == expected_url
        payload = json.loads(handler["http"]["body"])
        assert payload == {
            "project": manifest.project,
            "branch": manifest.branch,
            "flow": flow,
            "workflow": "{{workflow.name}}",
            "status": "{{workflow.status}}",
        }
        assert source.address in templates[flow].depends_on
    wanted = {(f.name, f"after-{k8s_name(t.after)}") for f in manifest.flows.values() for t in f.triggers if t.after}
    assert {(flow, d["name"]) for flow, d in dependencies} == wanted
    assert upstreams == {t.after for f in manifest.flows.values() for t in f.triggers if t.after}
    for downstream, dependency in dependencies:
        assert (dependency["eventSourceName"], dependency["eventName"]) == (source.address.name, "finished")
        upstream = next(
            t.after
            for t in manifest.flows[downstream].triggers
            if t.after and dependency["name"] == f"after-{k8s_name(t.after)}"
        )
        event = {"project": manifest.project, "branch": manifest.branch, "flow": upstream, "status": "Succeeded"}
        for data in dependency["filters"]["data"]:
            field = data["path"].removeprefix("body.")
            (pattern,) = data["value"]
            assert re.search(pattern, event[field]), (field, pattern)
            assert not re.search(pattern, event[field] + "x")
        other_status = {**event, "status": "Failed"}
        assert not all(re.search(d["value"][0], other_status[d["path"][5:]]) for d in dependency["filters"]["data"])


def test_no_after_trigger_no_event_source() -> None:
    assert of_kind(CASES["minimal"].compile(), "EventSource") == []
    assert "onExit" not in find(CASES["minimal"].compile(), "WorkflowTemplate").body["spec"]


# --------------------------------------------------------------------------- errors and purity


def test_a_stepfunctions_backend_is_refused() -> None:
    text = _manifest(
        "f: {image: img:1, steps: {start: {command: [run]}}}\n",
        """
        backends:
          aws:
            type: stepfunctions
            stepfunctions:
              region: eu-west-1
              execution_role_arn: arn:aws:iam::123456789012:role/run
              job_queue: q
        """,
    )
    with pytest.raises(ManifestError, match="does not render Argo"):
        compile_text(text)


def test_compiling_imports_no_sdk() -> None:
    """backends.argo stays import-light: neither the package nor a compile loads kubernetes or boto3."""
    script = textwrap.dedent(
        """
        import sys
        import backends.argo
        assert "kubernetes" not in sys.modules
        from tests.backends.argo.helpers import CASES
        CASES["triggers"].compile()
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("kubernetes", "boto3", "botocore", "hera"))
        print(",".join(loaded))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_names_argo_cannot_hold_are_refused() -> None:
    long_step = "s" * 124
    text = _manifest(
        f"""
        f:
          image: img:1
          steps:
            {long_step}: {{command: [run]}}
        """
    )
    with pytest.raises(ManifestError) as caught:
        compile_text(text)
    assert [(p.path, p.location.line) for p in caught.value.problems] == [
        (f"flows.f.steps.{long_step}", _line(text, long_step)),
    ]
    compile_text(text.replace(long_step, "s" * 123))


def test_parameters_differing_only_in_case_are_refused_before_compiling() -> None:
    text = _manifest(
        """
        f:
          image: img:1
          parameters: {rate: 1, RATE: 2}
          steps:
            start: {command: [run]}
        """
    )
    with pytest.raises(ManifestError) as caught:
        compile_text(text)
    assert [(p.path, p.location.line) for p in caught.value.problems] == [
        ("flows.f.parameters.RATE", _line(text, "rate: 1")),
    ]
