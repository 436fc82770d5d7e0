"""Schema and semantic checks of compiled Argo objects, each returning a list of findings (empty = fine).

Schema: hera's pydantic models of Argo Workflows and Argo Events (test-only).
They ignore unknown keys, so every object is also round-tripped through its model
and compared with the input: a key the model does not know, or a value it
changes, is a finding. hera 7.1's known gaps are checked another way:

- ``CronWorkflow.spec.schedule`` (the pre-3.6 single string): validated as ``schedules``;
- Argo Events models have no ``apiVersion``/``kind``: compared to the expected values;
- a webhook EventSource's context is inlined in Go but nested (``webhookContext``) in hera:
  each webhook is validated against ``WebhookContext``;
- an ``argoWorkflow`` trigger's ``source.resource`` is free-form: validated as a Workflow.

Semantics: names and labels valid, every reference resolves (DAG dependencies,
templates, template refs, ConfigMaps, EventSources, event names, URLs,
dependency names in conditions and parameters, parameter destinations), enums
are Argo's, no ``None`` and no empty containers.
"""

from __future__ import annotations

import json
import re
import zoneinfo
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import hera.events.models as events_models
import hera.workflows.models as workflow_models
from pydantic import BaseModel, ValidationError

from backends.argo.cron import _names_seven
from backends.argo.names import LIMITS
from planner.resources import Resource, join_pointer
from planner.schedule import CronError, parse_cron

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
WORKFLOW_FIELD_NAME = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")
CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PARAMETER_REF = re.compile(r"\{\{workflow\.parameters\.([A-Za-z0-9_-]+)\}\}")

API_VERSIONS = {
    "WorkflowTemplate": "argoproj.io/v1alpha1",
    "CronWorkflow": "argoproj.io/v1alpha1",
    "Sensor": "argoproj.io/v1alpha1",
    "EventSource": "argoproj.io/v1alpha1",
    "ConfigMap": "v1",
}
RETRY_POLICIES = {"Always", "OnFailure", "OnError", "OnTransientError"}
CONCURRENCY_POLICIES = {"Allow", "Forbid", "Replace"}
HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}
FILTER_TYPES = {"string", "number", "bool"}
COMPARATORS = {">=", ">", "=", "!=", "<", "<="}
TRIGGER_OPERATIONS = {"submit", "resubmit", "retry", "resume", "suspend", "terminate", "stop"}


# --------------------------------------------------------------------------- round trips


def lost_fields(original: Any, dumped: Any, path: tuple[str | int, ...] = ()) -> Iterator[str]:
    """Pointers of what ``original`` has that ``dumped`` lacks or holds differently."""
    if isinstance(original, dict):
        if not isinstance(dumped, dict):
            yield join_pointer(path)
            return
        for key, value in original.items():
            if key not in dumped:
                yield join_pointer((*path, key))
            else:
                yield from lost_fields(value, dumped[key], (*path, key))
    elif isinstance(original, list):
        if not isinstance(dumped, list) or len(original) != len(dumped):
            yield join_pointer(path)
            return
        for index, (left, right) in enumerate(zip(original, dumped, strict=True)):
            yield from lost_fields(left, right, (*path, index))
    elif original != dumped or type(original) is not type(dumped):
        yield join_pointer(path)


def round_trip(model: type[BaseModel], body: Mapping[str, Any], where: str) -> list[str]:
    """Validate ``body`` with ``model`` and report every field the round trip loses or changes."""
    try:
        parsed = model.model_validate(dict(body))
    except ValidationError as exc:
        return [f"{where}: {model.__name__} rejects it: {exc}"]
    dumped = parsed.model_dump(by_alias=True, exclude_none=True, mode="json")
    return [f"{where}: {model.__name__} does not keep {pointer}" for pointer in lost_fields(dict(body), dumped)]


def _copy(body: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(body))


def schema_problems(resource: Resource) -> list[str]:
    """hera's models, with the known gaps of hera 7.1 bridged explicitly."""
    body = _copy(resource.body)
    kind = resource.address.kind
    where = str(resource.address)
    found = []
    if body.get("apiVersion") != API_VERSIONS.get(kind) or body.get("kind") != kind:
        found.append(f"{where}: apiVersion/kind are {body.get('apiVersion')}/{body.get('kind')}")
    if kind == "WorkflowTemplate":
        found += round_trip(workflow_models.WorkflowTemplate, body, where)
    elif kind == "CronWorkflow":
        spec = body["spec"]
        if "schedule" in spec:
            spec["schedules"] = [spec.pop("schedule")]
        found += round_trip(workflow_models.CronWorkflow, body, where)
    elif kind == "Sensor":
        for index, trigger in enumerate(body["spec"].get("triggers", [])):
            source = trigger["template"]["argoWorkflow"]["source"]
            workflow = source.pop("resource")
            found += round_trip(workflow_models.Workflow, workflow, f"{where} trigger {index} resource")
            if source:
                found.append(f"{where}: trigger {index} source has more than a resource: {sorted(source)}")
            trigger["template"]["argoWorkflow"].pop("source")
        found += round_trip(events_models.Sensor, _without_type(body), where)
    elif kind == "EventSource":
        for name, webhook in body["spec"].pop("webhook", {}).items():
            found += round_trip(events_models.WebhookContext, webhook, f"{where} webhook {name}")
        found += round_trip(events_models.EventSource, _without_type(body), where)
    return found


def _without_type(body: dict[str, Any]) -> dict[str, Any]:
    """Argo Events models have no apiVersion/kind (checked above)."""
    return {k: v for k, v in body.items() if k not in ("apiVersion", "kind")}


# --------------------------------------------------------------------------- hygiene, names, labels


def hygiene_problems(resource: Resource) -> list[str]:
    """No None and no empty containers: the API server would drop them and the next plan would differ."""
    found = []

    def walk(node: Any, path: tuple[str | int, ...]) -> None:
        if node is None or (isinstance(node, dict | list) and not node):
            found.append(f"{resource.address}: {join_pointer(path)} is {node!r}")
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, (*path, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, (*path, index))

    walk(resource.body, ())
    return found


def _label_key_ok(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not all(DNS_LABEL.match(p) for p in prefix.split("."))):
        return False
    return bool(QUALIFIED_NAME.match(name)) and len(name) <= 63


def metadata_problems(resource: Resource) -> list[str]:
    where = str(resource.address)
    metadata = resource.body["metadata"]
    found = []
    name, namespace = metadata["name"], metadata["namespace"]
    if (resource.address.name, resource.address.namespace) != (name, namespace):
        found.append(f"{where}: address and metadata disagree ({namespace}/{name})")
    limit = LIMITS[resource.address.kind]
    if not DNS_LABEL.match(name) or len(name) > limit:
        found.append(f"{where}: name {name!r} is not a DNS label of at most {limit} characters")
    if not DNS_LABEL.match(namespace):
        found.append(f"{where}: namespace {namespace!r} is not a DNS label")
    found += label_problems(where, metadata.get("labels", {}))
    for key, value in metadata.get("annotations", {}).items():
        if not _label_key_ok(key) or not isinstance(value, str):
            found.append(f"{where}: annotation {key!r}: {value!r}")
    return found


def label_problems(where: str, labels: Mapping[str, Any]) -> list[str]:
    found = []
    for key, value in labels.items():
        if not _label_key_ok(key):
            found.append(f"{where}: label key {key!r} is invalid")
        if not isinstance(value, str) or not LABEL_VALUE.match(value) or len(value) > 63:
            found.append(f"{where}: label {key}={value!r} has an invalid value")
    return found


# --------------------------------------------------------------------------- per kind


def workflow_template_problems(resource: Resource) -> list[str]:
    where = str(resource.address)
    spec = resource.body["spec"]
    templates = {t["name"]: t for t in spec["templates"]}
    found = []
    if len(templates) != len(spec["templates"]):
        found.append(f"{where}: template names repeat")
    for name in templates:
        if not WORKFLOW_FIELD_NAME.match(name) or len(name) > 128:
            found.append(f"{where}: template name {name!r} is invalid")
    if spec["entrypoint"] not in templates or "dag" not in templates[spec["entrypoint"]]:
        found.append(f"{where}: entrypoint {spec['entrypoint']!r} is not a DAG template")
    if "onExit" in spec and spec["onExit"] not in templates:
        found.append(f"{where}: onExit {spec['onExit']!r} is not a template")
    declared = {p["name"] for p in spec.get("arguments", {}).get("parameters", [])}
    for used in PARAMETER_REF.findall(json.dumps(spec)):
        if used not in declared:
            found.append(f"{where}: {{{{workflow.parameters.{used}}}}} is not declared")
    found += label_problems(where + " workflowMetadata", spec.get("workflowMetadata", {}).get("labels", {}))
    for template in spec["templates"]:
        found += _template_problems(where, template, templates)
    return found


def _template_problems(where: str, template: dict[str, Any], templates: Mapping[str, Any]) -> list[str]:
    found = []
    name = template["name"]
    inputs = {p["name"] for p in template.get("inputs", {}).get("parameters", [])}
    for used in re.findall(r"\{\{inputs\.parameters\.([A-Za-z0-9_-]+)\}\}", json.dumps(template)):
        if used not in inputs:
            found.append(f"{where}: template {name} uses input {used!r} it does not declare")
    retry = template.get("retryStrategy")
    if retry is not None and (retry.get("retryPolicy") not in RETRY_POLICIES or not str(retry["limit"]).isdigit()):
        found.append(f"{where}: template {name} has retryStrategy {retry}")
    if "dag" in template:
        found += _dag_problems(where, template, templates)
    if "container" in template:
        for env in template["container"].get("env", []):
            if not ENV_NAME.match(env["name"]) or ("value" in env) == ("valueFrom" in env):
                found.append(f"{where}: template {name} env {env}")
    if "http" in template and template["http"].get("method") not in HTTP_METHODS:
        found.append(f"{where}: template {name} http method {template['http'].get('method')}")
    return found


def _dag_problems(where: str, template: dict[str, Any], templates: Mapping[str, Any]) -> list[str]:
    found = []
    tasks = {t["name"]: t for t in template["dag"]["tasks"]}
    for task in template["dag"]["tasks"]:
        name = task["name"]
        if not WORKFLOW_FIELD_NAME.match(name) or name[0].isdigit() or len(name) > 128:
            found.append(f"{where}: task name {name!r} is invalid")
        target = templates.get(task["template"])
        if target is None:
            found.append(f"{where}: task {name} uses unknown template {task['template']!r}")
        for dependency in task.get("dependencies", []):
            if dependency not in tasks:
                found.append(f"{where}: task {name} depends on unknown task {dependency!r}")
        loops = "withItems" in task or "withParam" in task
        if ("{{item}}" in json.dumps(task)) != loops:
            found.append(f"{where}: task {name} uses {{{{item}}}} without a loop, or loops without passing it")
        passed = {p["name"] for p in task.get("arguments", {}).get("parameters", [])}
        wanted = {p["name"] for p in (target or {}).get("inputs", {}).get("parameters", [])}
        if passed != wanted:
            found.append(f"{where}: task {name} passes {sorted(passed)} to a template wanting {sorted(wanted)}")
    if _has_cycle({n: t.get("dependencies", []) for n, t in tasks.items()}):
        found.append(f"{where}: the DAG has a cycle")
    return found


def _has_cycle(graph: Mapping[str, list[str]]) -> bool:
    state: dict[str, int] = {}

    def visit(node: str) -> bool:
        if state.get(node) == 1:
            return True
        if state.get(node) == 2:
            return False
        state[node] = 1
        if any(visit(n) for n in graph.get(node, []) if n in graph):
            return True
        state[node] = 2
        return False

    return any(visit(n) for n in graph)


def cron_workflow_problems(resource: Resource, index: Mapping[tuple[str, str, str], Resource]) -> list[str]:
    where = str(resource.address)
    spec = resource.body["spec"]
    found = []
    schedules = spec.get("schedules") or [spec.get("schedule")]
    for expression in schedules:
        try:
            cron = parse_cron(expression)
        except CronError as exc:
            found.append(f"{where}: schedule {expression!r}: {exc.message}")
            continue
        if _names_seven(cron.fields[4]):
            found.append(f"{where}: schedule {expression!r} has day-of-week 7, which Argo rejects")
    if "schedule" in spec and "schedules" in spec:
        found.append(f"{where}: both schedule and schedules")
    if spec["concurrencyPolicy"] not in CONCURRENCY_POLICIES:
        found.append(f"{where}: concurrencyPolicy {spec['concurrencyPolicy']!r}")
    try:
        zoneinfo.ZoneInfo(spec["timezone"])
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        found.append(f"{where}: timezone {spec['timezone']!r}")
    if not isinstance(spec["suspend"], bool):
        found.append(f"{where}: suspend is not a boolean")
    ref = spec["workflowSpec"]["workflowTemplateRef"]["name"]
    if ("WorkflowTemplate", resource.address.namespace, ref) not in index:
        found.append(f"{where}: workflowTemplateRef {ref!r} is not a compiled WorkflowTemplate")
    found += label_problems(where + " workflowMetadata", spec.get("workflowMetadata", {}).get("labels", {}))
    return found


def sensor_problems(resource: Resource, index: Mapping[tuple[str, str, str], Resource], external: str) -> list[str]:
    """``external`` is the EventSource flowplan does not manage (ArgoSettings.event_source)."""
    where = str(resource.address)
    spec = resource.body["spec"]
    found = []
    dependencies = {d["name"]: d for d in spec["dependencies"]}
    for dependency in spec["dependencies"]:
        found += _dependency_problems(where, dependency, resource.address.namespace, index, external)
    for trigger in spec["triggers"]:
        template = trigger["template"]
        if template.get("conditions") not in dependencies:
            found.append(f"{where}: trigger {template['name']} has conditions {template.get('conditions')!r}")
        submit = template["argoWorkflow"]
        if submit["operation"] not in TRIGGER_OPERATIONS:
            found.append(f"{where}: trigger operation {submit['operation']!r}")
        workflow = submit["source"]["resource"]
        found += _submitted_workflow_problems(where, workflow, index)
        arguments = workflow["spec"].get("arguments", {}).get("parameters", [])
        for parameter in submit.get("parameters", []):
            if parameter["src"]["dependencyName"] not in dependencies:
                found.append(f"{where}: parameter source {parameter['src']['dependencyName']!r} is unknown")
            match = re.fullmatch(r"spec\.arguments\.parameters\.(\d+)\.value", parameter["dest"])
            if match is None or int(match.group(1)) >= len(arguments):
                found.append(f"{where}: parameter destination {parameter['dest']!r} does not exist")
    return found


def _dependency_problems(
    where: str,
    dependency: dict[str, Any],
    namespace: str,
    index: Mapping[tuple[str, str, str], Resource],
    external: str,
) -> list[str]:
    found = []
    source = dependency["eventSourceName"]
    managed = index.get(("EventSource", namespace, source))
    if managed is not None:
        if dependency["eventName"] not in managed.body["spec"]["webhook"]:
            found.append(f"{where}: event {dependency['eventName']!r} is not in EventSource {source}")
    elif source != external:
        found.append(f"{where}: EventSource {source!r} is neither compiled nor the configured one")
    for data in dependency.get("filters", {}).get("data", []):
        if data["type"] not in FILTER_TYPES or data.get("comparator", "=") not in COMPARATORS:
            found.append(f"{where}: data filter {data}")
        if not data["value"] or not all(isinstance(v, str) for v in data["value"]):
            found.append(f"{where}: data filter values {data['value']!r} are not a list of strings")
        if data["type"] == "string":
            for value in data["value"]:
                try:
                    re.compile(value)
                except re.error:
                    found.append(f"{where}: {value!r} is not a regular expression")
        if data["type"] == "number":
            for value in data["value"]:
                try:
                    float(value)
                except ValueError:
                    found.append(f"{where}: {value!r} is not a number")
    return found


def _submitted_workflow_problems(
    where: str, workflow: dict[str, Any], index: Mapping[tuple[str, str, str], Resource]
) -> list[str]:
    found = []
    metadata = workflow["metadata"]
    ref = workflow["spec"]["workflowTemplateRef"]["name"]
    template = index.get(("WorkflowTemplate", metadata["namespace"], ref))
    if template is None:
        return [f"{where}: submits {ref!r}, which is not a compiled WorkflowTemplate in {metadata['namespace']}"]
    declared = {p["name"] for p in template.body["spec"].get("arguments", {}).get("parameters", [])}
    for parameter in workflow["spec"].get("arguments", {}).get("parameters", []):
        if parameter["name"] not in declared:
            found.append(f"{where}: passes parameter {parameter['name']!r} the template lacks")
    if len(metadata["generateName"]) > 58 or not DNS_LABEL.match(metadata["generateName"].rstrip("-")):
        found.append(f"{where}: generateName {metadata['generateName']!r}")
    found += label_problems(where + " submitted workflow", metadata.get("labels", {}))
    if metadata.get("labels") != template.body["spec"]["workflowMetadata"]["labels"]:
        found.append(f"{where}: submitted workflow labels differ from the template's run labels")
    return found


def event_source_problems(resource: Resource) -> list[str]:
    where = str(resource.address)
    spec = resource.body["spec"]
    ports = {p["port"] for p in spec.get("service", {}).get("ports", [])}
    found = []
    for name, webhook in spec["webhook"].items():
        if int(webhook["port"]) not in ports:
            found.append(f"{where}: webhook {name} listens on {webhook['port']}, which the service does not expose")
        if webhook["method"] not in HTTP_METHODS or not webhook["endpoint"].startswith("/"):
            found.append(f"{where}: webhook {name} {webhook}")
    if len(f"{resource.address.name}-eventsource-svc") > 63:
        found.append(f"{where}: its Service name would exceed 63 characters")
    return found


def exit_handler_problems(resource: Resource, index: Mapping[tuple[str, str, str], Resource]) -> list[str]:
    """An upstream's exit handler posts to a compiled EventSource's webhook, with its own flow's identity."""
    where = str(resource.address)
    found = []
    for template in resource.body["spec"]["templates"]:
        if "http" not in template:
            continue
        url = urlsplit(template["http"]["url"])
        host = url.hostname or ""
        match = re.fullmatch(r"(?P<name>[a-z0-9-]+)-eventsource-svc\.(?P<ns>[a-z0-9-]+)\.svc", host)
        source = index.get(("EventSource", match.group("ns"), match.group("name"))) if match else None
        if source is None:
            found.append(f"{where}: exit handler posts to {host!r}, which is no compiled EventSource's Service")
            continue
        webhooks = source.body["spec"]["webhook"].values()
        if not any(str(url.port) == w["port"] and url.path == w["endpoint"] for w in webhooks):
            found.append(f"{where}: exit handler posts to {url.port}{url.path}, which no webhook serves")
        payload = json.loads(template["http"]["body"])
        labels = resource.body["metadata"]["labels"]
        if payload["project"] != labels["flowplan.dev/project"] or payload["branch"] != labels["flowplan.dev/branch"]:
            found.append(f"{where}: exit handler reports another project or branch: {payload}")
        if payload["flow"] != resource.flow:
            found.append(f"{where}: exit handler reports flow {payload['flow']!r}")
    return found


def configmap_problems(resource: Resource) -> list[str]:
    data = resource.body.get("data", {})
    return [
        f"{resource.address}: data {key!r}: {value!r}"
        for key, value in data.items()
        if not CONFIGMAP_KEY.match(key) or not isinstance(value, str)
    ]


def reference_problems(resource: Resource, index: Mapping[tuple[str, str, str], Resource]) -> list[str]:
    """ConfigMaps in envFrom and every depends_on address resolve to compiled objects."""
    found = []
    addresses = {r.address for r in index.values()}
    for address in resource.depends_on:
        if address not in addresses:
            found.append(f"{resource.address}: depends on {address}, which is not compiled")
    if resource.address.kind == "WorkflowTemplate":
        for template in resource.body["spec"]["templates"]:
            for source in template.get("container", {}).get("envFrom", []):
                name = source["configMapRef"]["name"]
                if ("ConfigMap", resource.address.namespace, name) not in index:
                    found.append(f"{resource.address}: envFrom ConfigMap {name!r} is not compiled")
    return found


# --------------------------------------------------------------------------- all together


def all_problems(resources: list[Resource], external_event_source: str = "flowplan-events") -> list[str]:
    index = {(r.address.kind, r.address.namespace, r.address.name): r for r in resources}
    found: list[str] = []
    if len(index) != len(resources):
        found.append("two resources share kind, namespace and name")
    for resource in resources:
        found += schema_problems(resource)
        found += hygiene_problems(resource)
        found += metadata_problems(resource)
        found += reference_problems(resource, index)
        kind = resource.address.kind
        if kind == "WorkflowTemplate":
            found += workflow_template_problems(resource)
            found += exit_handler_problems(resource, index)
        elif kind == "CronWorkflow":
            found += cron_workflow_problems(resource, index)
        elif kind == "Sensor":
            found += sensor_problems(resource, index, external_event_source)
        elif kind == "EventSource":
            found += event_source_problems(resource)
        elif kind == "ConfigMap":
            found += configmap_problems(resource)
    return found
