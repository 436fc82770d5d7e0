"""The JSON Schema of ``flows.yaml`` — one source for validation and editors.

The loader validates the *structure* of a manifest against this schema
(keys, types, enums, required fields) before rendering templates, and
``flowplan schema`` prints it for yaml-language-server. Rules that depend on
rendered values or on other parts of the manifest (name syntax, cron, time
zones, references, step graphs) are checked in code after templating, so the
schema never flags a ``{{ vars.x }}`` an editor shows in a string.

Keys starting with ``x-`` are ours: ``x-message`` replaces jsonschema's text
for a rule whose default wording would not help a person, ``x-hint`` is
the advice shown with an enum's error when no close spelling exists.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

#: Ends every pattern. JSON Schema patterns are ECMA-262 regexes, where ``$`` is the end of the
#: text; jsonschema (and the fast check below) run them with Python's ``re.search``, where ``$``
#: also matches before a final newline. The lookahead, valid in both dialects, makes "greet\n"
#: fail everywhere, so an editor, jsonschema and flowplan give the same answer.
END = r"$(?!\n)"

NAME = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?" + END
FLOW_NAME = r"^[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?" + END
STEP_NAME = r"^[A-Za-z][A-Za-z0-9_-]*" + END
VAR_NAME = r"^[A-Za-z][A-Za-z0-9_]*" + END
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*" + END
PARAM_NAME = r"^[A-Za-z_][A-Za-z0-9_]*" + END

SCALAR = ["string", "number", "boolean"]

#: What each name pattern allows, in words (the schema's messages and docs/manifest.md).
NAME_WORDS = {
    NAME: "lowercase letters, digits and '-', starting and ending with a letter or digit",
    FLOW_NAME: "letters, digits, '-' and '_', starting and ending with a letter or digit",
    STEP_NAME: "letters, digits, '-' and '_', starting with a letter",
    VAR_NAME: "letters, digits and '_', starting with a letter",
    ENV_NAME: "letters, digits and '_', not starting with a digit",
}


def _names(pattern: str, what: str) -> dict[str, Any]:
    return {"pattern": pattern, "x-message": f"{what} names use {NAME_WORDS[pattern]}"}


def _obj(properties: dict[str, Any], *, required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """An object schema that rejects unknown keys (the did-you-mean comes from its properties)."""
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    schema.update(extra)
    return schema


def _named(item: dict[str, Any], pattern: str, what: str) -> dict[str, Any]:
    return {
        "type": "object",
        "propertyNames": _names(pattern, what),
        "additionalProperties": item,
    }


def _str(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


DURATION = {
    "type": ["string", "integer"],
    "description": "seconds, or a duration like 90s, 30m, 2h, 1h30m, 1d",
}

IGNORE_CHANGES = {
    "type": "array",
    "description": "differences to ignore, as KIND:/json/pointer (for example CronWorkflow:/spec/suspend)",
    "items": {"type": "string"},
}

ARGO = _obj(
    {
        "namespace": _str("namespace of WorkflowTemplates, CronWorkflows and ConfigMaps"),
        "sensor_namespace": _str("namespace of Sensors and EventSources (default: namespace)"),
        "service_account": _str("service account the workflow pods run as"),
        "event_bus": _str("Argo Events event bus (default: default)"),
        "event_source": _str("the EventSource that event triggers listen on (default: flowplan-events)"),
        "event_name": _str("the event name within that EventSource (default: flowplan)"),
        "schedule_field": {
            "enum": ["schedules", "schedule"],
            "description": "CronWorkflow field: schedules (a list, Argo >= 3.6, default) or the older schedule",
        },
        "image_pull_secrets": {"type": "array", "items": {"type": "string"}},
        "node_selector": {"type": "object", "additionalProperties": {"type": "string"}},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "naming": {"enum": ["flowplan", "metaflow"], "description": "physical naming scheme"},
    },
    description="Argo Workflows / Argo Events settings shared by the files and argo backends",
)

STEPFUNCTIONS = _obj(
    {
        "region": _str("AWS region, for example eu-west-1"),
        "account_id": _str("12-digit AWS account id (default: taken from execution_role_arn)"),
        "execution_role_arn": _str("IAM role the state machines run as"),
        "events_role_arn": _str("IAM role EventBridge Scheduler and rules use to start executions"),
        "job_execution_role_arn": _str(
            "IAM role Batch uses to pull sink secrets from Secrets Manager (default: execution_role_arn)"
        ),
        "job_queue": _str("AWS Batch job queue ARN or name"),
        "name_prefix": _str("prefix for every physical name"),
        "event_bus": _str("EventBridge bus that event triggers listen on (default: default)"),
        "inventory_table": _str("DynamoDB table for flowplan's inventory and lock (default: flowplan-state)"),
        "naming": {"enum": ["flowplan", "metaflow"], "description": "physical naming scheme"},
    },
    description="Step Functions settings shared by the files and stepfunctions backends",
)

METAFLOW = _obj(
    {
        "datastore_root": _str("Metaflow's S3 datastore root, s3://BUCKET/PREFIX (METAFLOW_DATASTORE_SYSROOT_S3)"),
        "image": _str("container image of the steps (pinned: Metaflow's default depends on the local Python)"),
        "metadata_service": _str("Metaflow metadata service URL (default: local metadata)"),
        "s3_endpoint_url": _str("S3 endpoint for an emulator or MinIO (METAFLOW_S3_ENDPOINT_URL)"),
        "user": _str("user name recorded in the package and templates (default: flowplan)"),
        "python": _str("interpreter that imports and compiles the flows (default: flowplan's own)"),
        "events_service_account": _str("service account of Metaflow's Sensors (default: argo.service_account)"),
        "events_webhook_url": _str("where Metaflow runs publish events (METAFLOW_ARGO_EVENTS_WEBHOOK_URL)"),
        "batch_job_role": _str("IAM role of the Batch jobs (METAFLOW_ECS_S3_ACCESS_IAM_ROLE)"),
        "dynamo_db_table": _str("DynamoDB table Step Functions foreach steps use (METAFLOW_SFN_DYNAMO_DB_TABLE)"),
        "parallelism": {"type": "integer", "minimum": 1, "maximum": 32, "description": "flows compiled at once"},
        "config": {
            "type": "object",
            "description": "further Metaflow settings, METAFLOW_NAME: value",
            "propertyNames": {
                "pattern": r"^METAFLOW_[A-Z0-9_]+" + END,
                "x-message": "config keys are METAFLOW_* names",
            },
            "additionalProperties": {"type": SCALAR},
        },
    },
    required=["datastore_root", "image"],
    description="settings of the Metaflow flows on this backend (docs/metaflow.md)",
)

_BACKEND_COMMON = {
    "type": {"enum": ["files", "argo", "stepfunctions"], "description": "which orchestrator"},
    "description": {"type": "string"},
    "ignore_changes": IGNORE_CHANGES,
    "metaflow": METAFLOW,
}

BACKEND = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": _BACKEND_COMMON["type"]},
    "allOf": [
        {
            "if": {"properties": {"type": {"const": "files"}}},
            "then": _obj(
                {
                    **_BACKEND_COMMON,
                    "path": _str("directory the manifests are rendered into (default: deploy)"),
                    "render": {"enum": ["argo", "stepfunctions"], "description": "what to render"},
                    "argo": ARGO,
                    "stepfunctions": STEPFUNCTIONS,
                }
            ),
        },
        {
            "if": {"properties": {"type": {"const": "argo"}}},
            "then": _obj(
                {
                    **_BACKEND_COMMON,
                    "kubeconfig": _str("kubeconfig file (default: $KUBECONFIG or ~/.kube/config)"),
                    "context": _str("kubeconfig context (default: the current context)"),
                    "in_cluster": {"type": "boolean", "description": "use the pod's service account"},
                    "verify_tls": {"type": "boolean", "description": "verify the API server's certificate"},
                    "argo": ARGO,
                },
                required=["type", "argo"],
            ),
        },
        {
            "if": {"properties": {"type": {"const": "stepfunctions"}}},
            "then": _obj(
                {
                    **_BACKEND_COMMON,
                    "profile": _str("AWS profile (default: the standard credential chain)"),
                    "endpoint_url": _str("endpoint for an emulator, for example http://127.0.0.1:5000"),
                    "verify_tls": {"type": "boolean", "description": "verify the endpoint's certificate"},
                    "stepfunctions": STEPFUNCTIONS,
                },
                required=["type", "stepfunctions"],
            ),
        },
    ],
}

SCHEDULE_BODY = {
    "cron": _str("standard 5-field cron: minute hour day-of-month month day-of-week"),
    "every": {
        "enum": ["hourly", "daily", "weekly"],
        "description": "hourly (minute 0), daily (00:00) or weekly (Sunday 00:00), in the schedule's time zone",
        "x-hint": "for any other interval write cron: with 5 fields",
    },
    "timezone": _str("IANA time zone, for example Europe/Berlin (default: UTC)"),
    "concurrency": {"enum": ["allow", "forbid", "replace"], "description": "when a run is still going"},
    "suspend": {"type": "boolean", "description": "deployed but not firing"},
    "starting_deadline": DURATION,
    "description": {"type": "string"},
}

SCHEDULE = _obj(SCHEDULE_BODY)

SECRET_REF = _obj(
    {
        "secret": _str("Kubernetes Secret name"),
        "key": _str("key within the Kubernetes Secret"),
        "arn": _str("AWS Secrets Manager secret ARN"),
    },
    description="a reference to a secret; never a literal value",
    minProperties=1,
)

_SINK_COMMON = {
    "type": {"enum": ["warehouse", "cache", "model"]},
    "description": {"type": "string"},
    "credentials": SECRET_REF,
}

SINK = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": _SINK_COMMON["type"]},
    "allOf": [
        {
            "if": {"properties": {"type": {"const": "warehouse"}}},
            "then": _obj(
                {**_SINK_COMMON, "uri": {"type": "string"}, "table": {"type": "string"}},
                required=["type", "uri", "table"],
            ),
        },
        {
            "if": {"properties": {"type": {"const": "cache"}}},
            "then": _obj(
                {
                    **_SINK_COMMON,
                    "uri": {"type": "string"},
                    "key_prefix": {"type": "string"},
                    "ttl": DURATION,
                },
                required=["type", "uri", "key_prefix"],
            ),
        },
        {
            "if": {"properties": {"type": {"const": "model"}}},
            "then": _obj(
                {
                    **_SINK_COMMON,
                    "platform": {"enum": ["seldon", "kserve", "sagemaker"]},
                    "endpoint": {"type": "string"},
                },
                required=["type", "platform", "endpoint"],
            ),
        },
    ],
}

EVENT = _obj(
    {
        "source": _str("who emits it, for example s3 or billing"),
        "type": _str("what happened, for example object-created"),
        "description": {"type": "string"},
        "filters": {
            "type": "array",
            "items": _obj(
                {
                    "path": _str("dotted path in the payload, for example bucket.name"),
                    "op": {"enum": ["eq", "ne", "in", "prefix", "exists", "gt", "gte", "lt", "lte"]},
                    "value": {},
                },
                required=["path"],
            ),
        },
        "parameters": {
            "type": "object",
            "description": "flow parameter -> dotted payload path",
            "propertyNames": _names(PARAM_NAME, "parameter"),
            "additionalProperties": {"type": "string"},
        },
    },
    required=["source", "type"],
)

RESOURCES = _obj(
    {
        "cpu": {"type": ["string", "number"], "description": "Kubernetes quantity: 500m, 2, 0.5"},
        "memory": {"type": "string", "description": "Kubernetes quantity: 512Mi, 4Gi"},
        "gpu": {"type": "integer", "minimum": 0, "maximum": 16},
    }
)

ENV_VALUE = {
    "type": ["string", "number", "boolean", "object"],
    "properties": {"value": {"type": SCALAR}, "sensitive": {"type": "boolean"}},
    "required": ["value"],
    "additionalProperties": False,
}

STEP = _obj(
    {
        "command": {
            "type": ["string", "array"],
            "items": {"type": "string"},
            "minItems": 1,
            "minLength": 1,
            "description": "a list (run as is) or a string (run with sh -c)",
        },
        "image": _str("container image (default: the flow's)"),
        "resources": RESOURCES,
        "retries": {"type": "integer", "minimum": 0, "maximum": 20},
        "timeout": DURATION,
        "env": {
            "type": "object",
            "propertyNames": _names(ENV_NAME, "environment variable"),
            "additionalProperties": ENV_VALUE,
        },
        "next": {
            "type": ["string", "array"],
            "items": {"type": "string"},
            "description": "the following step(s)",
        },
        "foreach": {
            "type": ["array", "object"],
            "description": "run once per item: a literal list, or {parameter: NAME} for a list-valued parameter",
            "properties": {"parameter": {"type": "string"}},
            "required": ["parameter"],
            "additionalProperties": False,
        },
        "description": {"type": "string"},
    },
    required=["command"],
)

PARAMETER = {
    "type": ["string", "number", "boolean", "array", "object"],
    "properties": {
        "default": {},
        "type": {"enum": ["string", "int", "float", "bool", "list"]},
        "description": {"type": "string"},
    },
    "required": ["default"],
    "additionalProperties": False,
}

TRIGGER = _obj(
    {
        "event": _str("a name from events"),
        "after": _str("a flow on the same backend; runs when it succeeds on the same branch"),
    },
    minProperties=1,
    maxProperties=1,
)
TRIGGER["x-message"] = "a trigger is either {event: NAME} or {after: FLOW}"

METAFLOW_FLOW = _obj(
    {
        "file": _str("the FlowSpec file, relative to the manifest"),
        "flow_class": _str("the FlowSpec class the file starts (checked)"),
        "package_suffixes": {
            "type": "array",
            "items": {"type": "string"},
            "description": "file suffixes packaged besides .py (Metaflow's --package-suffixes)",
        },
        "env": {
            "type": "object",
            "description": "environment variables of this flow's compile (over the backend's metaflow: settings)",
            "propertyNames": _names(ENV_NAME, "environment variable"),
            "additionalProperties": {"type": SCALAR},
        },
    },
    required=["file"],
    description="the flow is a Metaflow FlowSpec file (docs/metaflow.md)",
)

FLOW = _obj(
    {
        "description": {"type": "string"},
        "backend": _str("a name from backends (optional when there is one)"),
        "image": _str("default container image of the steps"),
        "parameters": {
            "type": "object",
            "propertyNames": _names(PARAM_NAME, "parameter"),
            "additionalProperties": PARAMETER,
        },
        "schedule": {
            "type": ["string", "object"],
            "description": "a name from schedules, or an inline schedule",
            "properties": SCHEDULE_BODY,
            "additionalProperties": False,
        },
        "triggers": {"type": "array", "items": TRIGGER},
        "sinks": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
        "protect": {"type": "boolean", "description": "never deleted or replaced by flowplan"},
        "ignore_changes": IGNORE_CHANGES,
        "steps": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": _names(STEP_NAME, "step"),
            "additionalProperties": STEP,
        },
        "metaflow": METAFLOW_FLOW,
    },
    # steps are required unless the flow is a Metaflow FlowSpec file
    allOf=[{"if": {"properties": {"metaflow": False}}, "then": {"required": ["steps"]}}],
)

VAR = {
    "type": ["string", "number", "boolean", "object", "null"],
    "properties": {
        "default": {"type": SCALAR},
        "sensitive": {"type": "boolean"},
        "description": {"type": "string"},
    },
    "additionalProperties": False,
}

MANIFEST: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://flowplan.dev/schemas/flows-v1.json",
    "title": "flowplan manifest (flows.yaml), version 1",
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "project", "flows"],
    "properties": {
        "version": {"const": 1, "x-message": "version must be 1 (the only manifest version so far)"},
        "project": _str("the deployment's namespace of names (lowercase letters, digits, -)"),
        "description": {"type": "string"},
        "vars": _named(VAR, VAR_NAME, "var"),
        "backends": _named(BACKEND, NAME, "backend"),
        "schedules": _named(SCHEDULE, NAME, "schedule"),
        "events": _named(EVENT, NAME, "event"),
        "sinks": _named(SINK, NAME, "sink"),
        "flows": {**_named(FLOW, FLOW_NAME, "flow"), "minProperties": 1},
        "moved": {
            "type": "array",
            "items": _obj(
                {
                    "from": {"type": "string"},
                    "to": {"type": "string"},
                    "kind": {"enum": ["flow", "project", "branch"], "description": "what was renamed (default: flow)"},
                },
                required=["from", "to"],
            ),
        },
    },
}


def json_schema() -> dict[str, Any]:
    """The manifest schema, for ``flowplan schema`` and editors."""
    return MANIFEST


# --------------------------------------------------------------------------- a fast yes/no check

_ANNOTATIONS = frozenset({"description", "title", "$schema", "$id", "x-message", "x-hint", "default", "examples"})


def _json_type(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if isinstance(value, bool):
        return False
    if kind == "number":
        return isinstance(value, int | float)
    if kind == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    raise ValueError(f"unknown JSON type {kind!r}")


#: JSON types whose instances are exactly these Python classes (YAML never yields bool for a string).
_CLASSES: dict[str, type] = {"string": str, "object": dict, "array": list, "boolean": bool, "null": type(None)}


def _json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON Schema means it: ``true`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def compile_check(schema: dict[str, Any] | bool) -> Callable[[Any], bool]:
    """A function answering "is this instance valid?" for the keywords this schema uses.

    jsonschema's validator is general and therefore slow: checking a
    10,000-flow manifest took several seconds. The loader asks this compiled
    check first and runs jsonschema (for its detailed errors) only on the parts
    that fail. Unknown keywords raise at compile time, so the schema cannot
    grow a rule this check silently ignores; a property test compares the two.
    """
    if schema is True or schema == {}:
        return lambda value: True
    if schema is False:
        return lambda value: False
    assert isinstance(schema, dict)
    checks: list[Callable[[Any], bool]] = []
    if "properties" in schema and "additionalProperties" in schema:
        # The common object shape, in one pass over the instance's items.
        checks.append(_object(schema["properties"], schema["additionalProperties"]))
    for keyword, arg in schema.items():
        if keyword in _ANNOTATIONS or keyword == "then":
            continue
        if (
            keyword in ("properties", "additionalProperties")
            and "properties" in schema
            and "additionalProperties" in schema
        ):
            continue
        checks.append(_keyword(keyword, arg, schema))
    if len(checks) == 1:
        return checks[0]

    def check_all(value: Any) -> bool:
        # A plain loop: all() over a generator costs a frame per call, and this runs per node.
        for check in checks:  # noqa: SIM110
            if not check(value):
                return False
        return True

    return check_all


def _object(properties: dict[str, Any], additional: Any) -> Callable[[Any], bool]:
    props = {name: compile_check(sub) for name, sub in properties.items()}
    other = compile_check(additional)
    get = props.get

    def check(value: Any) -> bool:
        if type(value) is not dict:
            return True
        for key, item in value.items():  # noqa: SIM110 - a plain loop is faster, see check_all
            if not get(key, other)(item):
                return False
        return True

    return check


def _keyword(keyword: str, arg: Any, schema: dict[str, Any]) -> Callable[[Any], bool]:
    if keyword == "type":
        kinds = arg if isinstance(arg, list) else [arg]
        if not {"number", "integer"} & set(kinds):  # one isinstance call: this runs for every node
            classes = tuple(_CLASSES[k] for k in kinds)
            return lambda v: isinstance(v, classes)
        return lambda v: any(_json_type(v, k) for k in kinds)
    if keyword == "properties":
        props = {name: compile_check(sub) for name, sub in arg.items()}
        return lambda v: not isinstance(v, dict) or all(props[k](v[k]) for k in props.keys() & v.keys())
    if keyword == "additionalProperties":
        known = set(schema.get("properties", {}))
        sub = compile_check(arg)
        return lambda v: not isinstance(v, dict) or all(sub(x) for k, x in v.items() if k not in known)
    if keyword == "required":
        return lambda v: not isinstance(v, dict) or all(k in v for k in arg)
    if keyword == "enum":
        return lambda v: any(_json_equal(v, option) for option in arg)
    if keyword == "const":
        return lambda v: _json_equal(v, arg)
    if keyword == "pattern":
        rx = re.compile(arg)
        return lambda v: not isinstance(v, str) or rx.search(v) is not None
    if keyword == "propertyNames":
        sub = compile_check(arg)
        return lambda v: not isinstance(v, dict) or all(sub(k) for k in v)
    if keyword == "minProperties":
        return lambda v: not isinstance(v, dict) or len(v) >= arg
    if keyword == "maxProperties":
        return lambda v: not isinstance(v, dict) or len(v) <= arg
    if keyword == "minItems":
        return lambda v: not isinstance(v, list) or len(v) >= arg
    if keyword == "minLength":
        return lambda v: not isinstance(v, str) or len(v) >= arg
    if keyword == "uniqueItems":
        return lambda v: not arg or not isinstance(v, list) or _unique(v)
    if keyword == "items":
        sub = compile_check(arg)
        return lambda v: not isinstance(v, list) or all(sub(x) for x in v)
    if keyword == "minimum":
        return lambda v: not _json_type(v, "number") or v >= arg
    if keyword == "maximum":
        return lambda v: not _json_type(v, "number") or v <= arg
    if keyword == "allOf":
        subs = [compile_check(sub) for sub in arg]
        return lambda v: all(sub(v) for sub in subs)
    if keyword == "if":
        cond = compile_check(arg)
        then = compile_check(schema.get("then", True))
        return lambda v: not cond(v) or then(v)
    raise ValueError(f"compile_check does not support the keyword {keyword!r}")


def _unique(items: list[Any]) -> bool:
    for i, a in enumerate(items):
        for b in items[i + 1 :]:
            if _json_equal(a, b):
                return False
    return True


def _split_flows(schema: dict[str, Any]) -> dict[str, Any]:
    """The manifest schema with each flow accepted as is (flows are then checked one by one)."""
    flows = dict(schema["properties"]["flows"])
    flows["additionalProperties"] = True
    return {**schema, "properties": {**schema["properties"], "flows": flows}}


#: The manifest without the insides of flows, and one flow: checked separately so that
#: a typo in one flow of thousands sends only that flow through jsonschema.
MANIFEST_SHELL = _split_flows(MANIFEST)
check_manifest = compile_check(MANIFEST)
check_shell = compile_check(MANIFEST_SHELL)
check_flow = compile_check(FLOW)
