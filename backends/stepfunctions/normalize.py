"""AWS answers → the normalized bodies the compiler writes. Pure: shared by the reader and the writer.

Each function keeps what the person controls and drops or defaults what AWS
adds or reformats, so that a fresh apply followed by a plan shows nothing:

- definitions, execution inputs, event patterns and parameter values are
  parsed JSON (AWS may hand back the text as sent, reformatted or not);
- ARNs, revision ids, versions, creation and modification dates are dropped;
- defaults are dropped when AWS adds them (a state machine's logging OFF,
  tracing disabled and AWS-owned encryption; a job definition's empty
  ``volumes`` / ``mountPoints`` / ``ulimits`` / ``parameters``; Scheduler's
  ``ActionAfterCompletion: NONE``) and written out when AWS omits them
  (Scheduler's retry policy and time zone UTC, Batch's EC2 platform);
- lists AWS may reorder are sorted (environment and secrets by name, resource
  requirements by type, rule targets by id);
- tags are a mapping.

Anything else found live is kept, so a change made by hand (logging turned
on, a second rule target, a schedule disabled) shows up as a difference.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping, Sequence
from typing import Any

from backends.stepfunctions.compile import ALIAS, DEFAULT_RETRY_POLICY
from planner.resources import canonical_json, digest

__all__ = [
    "PUBLISHED_KEY",
    "group_body",
    "job_content",
    "job_definition_body",
    "parameter_body",
    "published_hash",
    "rule_body",
    "schedule_body",
    "state_machine_body",
    "tag_dict",
    "tag_list",
    "version_of",
]

#: On a state machine: the hash of the definition, role and type the ``live`` alias was last moved to.
#: Written after the alias moves, so a run that died in between leaves it stale and the next plan
#: shows ``alias: live (behind ...)`` and publishes again.
PUBLISHED_KEY = "flowplan.dev/published"


def tag_dict(tags: Any, key: str = "Key", value: str = "Value") -> dict[str, str]:
    """AWS's tag list (``[{"Key", "Value"}]``, in any spelling) or mapping as a sorted mapping."""
    if isinstance(tags, Mapping):
        return {str(k): str(v) for k, v in sorted(tags.items())}
    result = {str(item[key]): str(item.get(value, "")) for item in tags or ()}
    return dict(sorted(result.items()))


def tag_list(tags: Mapping[str, str], key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    return [{key: k, value: v} for k, v in sorted(tags.items())]


def _json(text: Any) -> Any:
    """Parsed JSON when ``text`` is JSON text, else ``text`` unchanged (a hand-made value stays visible)."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _present(value: Any) -> bool:
    return value is not None and value != [] and value != {} and value != ""


def _clean(mapping: Mapping[str, Any], drop: Sequence[str] = ()) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k not in drop and k != "ResponseMetadata" and _present(v)}


def _text(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def version_of(body: Mapping[str, Any], *extra: Any) -> str:
    """The concurrency token of a live resource: a hash of its normalized body (and what else identifies it)."""
    return digest([body, *extra])[:16]


# --------------------------------------------------------------------------- state machines


def published_hash(body: Mapping[str, Any]) -> str:
    """What the alias should run: definition, role and type."""
    return digest({k: body.get(k) for k in ("definition", "roleArn", "type")})[:16]


def state_machine_body(describe: Mapping[str, Any], tags: Mapping[str, str]) -> dict[str, Any]:
    """``DescribeStateMachine`` + its tags → body; ``alias`` says whether ``live`` runs this definition."""
    body: dict[str, Any] = {
        "name": describe["name"],
        "type": describe.get("type", "STANDARD"),
        "roleArn": describe.get("roleArn", ""),
        "definition": _json(describe.get("definition", "")),
    }
    logging = _clean(describe.get("loggingConfiguration") or {}, drop=())
    if logging.get("includeExecutionData") is False:
        logging.pop("includeExecutionData")
    if logging and logging != {"level": "OFF"}:
        body["loggingConfiguration"] = logging
    tracing = describe.get("tracingConfiguration") or {}
    if tracing.get("enabled"):
        body["tracingConfiguration"] = dict(tracing)
    encryption = _clean(describe.get("encryptionConfiguration") or {})
    if encryption and encryption != {"type": "AWS_OWNED_KEY"}:
        body["encryptionConfiguration"] = encryption
    if describe.get("status", "ACTIVE") != "ACTIVE":
        body["status"] = describe["status"]
    published = tags.get(PUBLISHED_KEY)
    if published == published_hash(body):
        body["alias"] = ALIAS
    elif published is None:
        body["alias"] = f"{ALIAS} (not published by flowplan)"
    else:
        body["alias"] = f"{ALIAS} (behind: runs an older definition)"
    body["tags"] = {k: v for k, v in sorted(tags.items()) if k != PUBLISHED_KEY}
    return body


# --------------------------------------------------------------------------- EventBridge rules


def _target(target: Mapping[str, Any]) -> dict[str, Any]:
    result = _clean(target)
    if "Input" in result:
        result["Input"] = _json(result["Input"])
    return result


def rule_body(rule: Mapping[str, Any], targets: Sequence[Mapping[str, Any]], tags: Mapping[str, str]) -> dict[str, Any]:
    """A ``ListRules`` item + ``ListTargetsByRule`` + tags → body."""
    body = _clean(rule, drop=("Arn", "CreatedBy", "ManagedBy"))
    body.setdefault("EventBusName", "default")
    if "EventPattern" in body:
        body["EventPattern"] = _json(body["EventPattern"])
    body["Tags"] = dict(sorted(tags.items()))
    body["Targets"] = sorted((_target(t) for t in targets), key=lambda t: str(t.get("Id", "")))
    return body


# --------------------------------------------------------------------------- Scheduler


def schedule_body(schedule: Mapping[str, Any]) -> dict[str, Any]:
    """``GetSchedule`` → body (its default retry policy and time zone written out)."""
    body = _clean(schedule, drop=("Arn", "CreationDate", "LastModificationDate"))
    body.setdefault("ScheduleExpressionTimezone", "UTC")
    if body.get("ActionAfterCompletion") == "NONE":
        body.pop("ActionAfterCompletion")
    for key in ("StartDate", "EndDate"):
        if key in body:
            body[key] = _text(body[key])
    window = dict(body.get("FlexibleTimeWindow") or {})
    if window.get("Mode") == "OFF":
        window.pop("MaximumWindowInMinutes", None)
    if window:
        body["FlexibleTimeWindow"] = window
    target = _clean(body.get("Target") or {})
    if "Input" in target:
        target["Input"] = _json(target["Input"])
    target.setdefault("RetryPolicy", dict(DEFAULT_RETRY_POLICY))
    body["Target"] = target
    return body


def group_body(group: Mapping[str, Any], tags: Mapping[str, str]) -> dict[str, Any]:
    """``GetScheduleGroup`` + tags → body."""
    body: dict[str, Any] = {"Name": group["Name"]}
    if group.get("State", "ACTIVE") != "ACTIVE":
        body["State"] = group["State"]
    body["Tags"] = dict(sorted(tags.items()))
    return body


# --------------------------------------------------------------------------- Batch job definitions

_CONTAINER_SORT = {"environment": "name", "secrets": "name", "resourceRequirements": "type"}


def _container(properties: Mapping[str, Any]) -> dict[str, Any]:
    container = _clean(properties)
    for key, by in _CONTAINER_SORT.items():
        if key in container:
            container[key] = sorted((dict(item) for item in container[key]), key=lambda item: str(item.get(by)))
    if "resourceRequirements" in container:
        container["resourceRequirements"] = [
            {"type": str(r["type"]), "value": str(r["value"])} for r in container["resourceRequirements"]
        ]
    return container


def job_content(job: Mapping[str, Any]) -> dict[str, Any]:
    """What a revision runs, without name and tags: equal contents are the same job definition."""
    content = _clean(
        job,
        drop=("jobDefinitionName", "jobDefinitionArn", "revision", "status", "tags", "containerOrchestrationType"),
    )
    content.setdefault("platformCapabilities", ["EC2"])
    if content.get("propagateTags") is False:
        content.pop("propagateTags")
    if "containerProperties" in content:
        content["containerProperties"] = _container(content["containerProperties"])
    return content


def job_definition_body(job: Mapping[str, Any]) -> dict[str, Any]:
    """A ``DescribeJobDefinitions`` revision → body."""
    return {"jobDefinitionName": job["jobDefinitionName"], **job_content(job), "tags": tag_dict(job.get("tags"))}


# --------------------------------------------------------------------------- SSM parameters


def parameter_body(parameter: Mapping[str, Any], tags: Mapping[str, str]) -> dict[str, Any]:
    """A ``GetParametersByPath`` / ``GetParameter`` item + tags → body."""
    body: dict[str, Any] = {
        "Name": parameter["Name"],
        "Type": parameter.get("Type", "String"),
        "Value": _json(parameter.get("Value", "")),
    }
    body["Tags"] = dict(sorted(tags.items()))
    return body


def dumps(value: Any) -> str:
    """How flowplan sends JSON to AWS (definitions, inputs, patterns, values): canonical, compact."""
    return canonical_json(value)
