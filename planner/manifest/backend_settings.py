"""The settings blocks of the Argo and Step Functions backends: ``argo:`` and ``stepfunctions:``.

Both are read whatever renders them (an ``argo`` backend, or a ``files``
backend that writes Argo or Step Functions documents), with their defaults
filled in and every value checked against what the orchestrator accepts, so a
bad namespace or role ARN is reported with the manifest, not by the cluster.
"""

from __future__ import annotations

import re
from typing import Any

from planner.manifest import model as m
from planner.manifest.context import Context, as_dict, as_list, as_str
from planner.manifest.naming import DNS_LABEL, K8S_NAME, K8S_NAME_MAX, check_labels
from planner.manifest.yamlsource import PathT

ARN = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:[0-9]{12}:[!-~]+$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]$")


def argo_settings(ctx: Context, spec: dict[str, Any], path: PathT) -> m.ArgoSettings:
    """``argo:`` with its defaults; names checked against Kubernetes' rules, since they become object names."""
    namespace = as_str(spec.get("namespace"), "argo") or "argo"
    for key in ("namespace", "sensor_namespace"):
        value = spec.get(key)
        if isinstance(value, str) and (not DNS_LABEL.fullmatch(value) or len(value) > 63):
            ctx.error((*path, key), f"{value!r} is not a valid Kubernetes namespace name")
    for key in ("service_account", "event_bus", "event_source", "event_name"):
        value = spec.get(key)
        if isinstance(value, str) and (not K8S_NAME.fullmatch(value) or len(value) > K8S_NAME_MAX):
            ctx.error((*path, key), f"{value!r} is not a valid Kubernetes name")
    labels = {str(k): str(v) for k, v in as_dict(spec.get("labels")).items()}
    check_labels(ctx, labels, (*path, "labels"))
    return m.ArgoSettings(
        namespace=namespace,
        sensor_namespace=as_str(spec.get("sensor_namespace"), namespace) or namespace,
        service_account=as_str(spec.get("service_account")),
        event_bus=as_str(spec.get("event_bus"), "default") or "default",
        event_source=as_str(spec.get("event_source"), "flowplan-events") or "flowplan-events",
        event_name=as_str(spec.get("event_name"), "flowplan") or "flowplan",
        schedule_field="schedule" if spec.get("schedule_field") == "schedule" else "schedules",
        image_pull_secrets=tuple(s for s in as_list(spec.get("image_pull_secrets")) if isinstance(s, str)),
        node_selector={str(k): str(v) for k, v in as_dict(spec.get("node_selector")).items()},
        labels=labels,
        naming="metaflow" if spec.get("naming") == "metaflow" else "flowplan",
    )


def stepfunctions_settings(ctx: Context, spec: dict[str, Any], path: PathT) -> m.StepFunctionsSettings:
    """``stepfunctions:`` with its defaults; the account id, when not given, comes from the execution role's ARN."""
    region = as_str(spec.get("region"), "") or ""
    if not region:
        ctx.error(path, "missing required key 'region'", key=True)
    elif not REGION.fullmatch(region):
        ctx.error((*path, "region"), f"{region!r} is not an AWS region name", "for example eu-west-1")
    for key in ("execution_role_arn", "events_role_arn", "job_execution_role_arn"):
        value = spec.get(key)
        if isinstance(value, str) and not ARN.fullmatch(value):
            ctx.error((*path, key), f"{value!r} is not an IAM role ARN", "arn:aws:iam::123456789012:role/NAME")
    if not isinstance(spec.get("execution_role_arn"), str):
        ctx.error(path, "missing required key 'execution_role_arn'", key=True)
    if not isinstance(spec.get("job_queue"), str):
        ctx.error(path, "missing required key 'job_queue'", "the AWS Batch job queue the steps run on", key=True)
    account = as_str(spec.get("account_id"))
    if account is None:
        match = re.match(r"^arn:aws[a-z-]*:iam::([0-9]{12}):", as_str(spec.get("execution_role_arn"), "") or "")
        account = match.group(1) if match else "000000000000"
    elif not re.fullmatch(r"[0-9]{12}", account):
        ctx.error((*path, "account_id"), f"{account!r} is not a 12-digit AWS account id")
    prefix = as_str(spec.get("name_prefix"), "") or ""
    if prefix and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,19}", prefix):
        ctx.error((*path, "name_prefix"), "name_prefix is at most 20 letters, digits, '-' or '_'")
    if spec.get("naming") == "metaflow":
        ctx.error(
            (*path, "naming"),
            "naming: metaflow is not supported on Step Functions yet",
            "Metaflow schedules state machines with EventBridge rules where flowplan uses Scheduler, so adopting "
            "in place would leave two schedules; deploy Metaflow flows as `metaflow:` sources, or import the "
            "state machine with `flowplan import --from`",
        )
    return m.StepFunctionsSettings(
        region=region,
        account_id=account,
        execution_role_arn=as_str(spec.get("execution_role_arn")),
        events_role_arn=as_str(spec.get("events_role_arn")),
        job_execution_role_arn=as_str(spec.get("job_execution_role_arn")),
        job_queue=as_str(spec.get("job_queue")),
        name_prefix=prefix,
        event_bus=as_str(spec.get("event_bus"), "default") or "default",
        inventory_table=as_str(spec.get("inventory_table"), "flowplan-state") or "flowplan-state",
        naming="metaflow" if spec.get("naming") == "metaflow" else "flowplan",
    )
