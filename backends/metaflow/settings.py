"""A backend's ``metaflow:`` block → the environment Metaflow compiles in.

Everything a deployment needs comes from the manifest, never from a
developer's ``~/.metaflowconfig``: the compile runs with ``METAFLOW_HOME``
pointing at an empty directory, in an environment flowplan builds from
scratch (see :func:`compile_environment`):

=====================================  ==============================================================
Metaflow setting                       from
=====================================  ==============================================================
METAFLOW_DEFAULT_DATASTORE             ``s3`` (the only datastore both orchestrators run on here)
METAFLOW_DATASTORE_SYSROOT_S3          ``metaflow.datastore_root``
METAFLOW_DEFAULT_METADATA              ``service`` with ``metaflow.metadata_service``, else ``local``
METAFLOW_SERVICE_URL                   ``metaflow.metadata_service``
METAFLOW_S3_ENDPOINT_URL               ``metaflow.s3_endpoint_url``
METAFLOW_USER, USERNAME                ``metaflow.user`` (default ``flowplan``)
METAFLOW_KUBERNETES_CONTAINER_IMAGE    ``metaflow.image``
METAFLOW_BATCH_CONTAINER_IMAGE         ``metaflow.image``
METAFLOW_KUBERNETES_NAMESPACE          ``argo.namespace``
METAFLOW_KUBERNETES_SERVICE_ACCOUNT    ``argo.service_account``
METAFLOW_ARGO_EVENTS_SENSOR_NAMESPACE  ``argo.sensor_namespace``
METAFLOW_ARGO_EVENTS_EVENT_BUS         ``argo.event_bus``
METAFLOW_ARGO_EVENTS_EVENT_SOURCE      ``argo.event_source``
METAFLOW_ARGO_EVENTS_EVENT             ``argo.event_name``
METAFLOW_ARGO_EVENTS_SERVICE_ACCOUNT   ``metaflow.events_service_account``, else ``argo.service_account``
METAFLOW_ARGO_EVENTS_WEBHOOK_URL       ``metaflow.events_webhook_url``
METAFLOW_SFN_IAM_ROLE                  ``stepfunctions.execution_role_arn``
METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE    ``stepfunctions.events_role_arn``
METAFLOW_BATCH_JOB_QUEUE               ``stepfunctions.job_queue``
METAFLOW_ECS_S3_ACCESS_IAM_ROLE        ``metaflow.batch_job_role``
METAFLOW_SFN_DYNAMO_DB_TABLE           ``metaflow.dynamo_db_table``
(anything else)                        ``metaflow.config`` (``METAFLOW_*`` keys), then the flow's
                                       ``metaflow.env``
=====================================  ==============================================================
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from planner.errors import ManifestError, Problem
from planner.manifest import Backend as BackendSpec
from planner.manifest import Flow, StepFunctionsSettings

__all__ = [
    "METAFLOW_VERSION",
    "PINNED_FLOW_ENV",
    "MetaflowSettings",
    "compile_environment",
    "settings_for",
]

#: The one Metaflow version flowplan compiles with (pyproject's ``metaflow`` extra pins the same).
METAFLOW_VERSION = "2.19.39"
DEFAULT_USER = "flowplan"
#: Flows compiled at once: packaging is CPU-bound, so no more than the machine's CPUs.
DEFAULT_PARALLELISM = max(1, min(4, os.cpu_count() or 1))
#: Keys of a flow's ``metaflow.env`` that may override what flowplan set from the backend.
PINNED_FLOW_ENV = frozenset({"METAFLOW_KUBERNETES_CONTAINER_IMAGE", "METAFLOW_BATCH_CONTAINER_IMAGE"})
#: What the compile process inherits from flowplan's own environment: how to reach AWS, not what to deploy.
_PASSED_THROUGH = re.compile(
    r"^(AWS_[A-Z0-9_]+|PATH|HOME|LANG|LC_ALL|LC_CTYPE|SSL_CERT_FILE|REQUESTS_CA_BUNDLE|TMPDIR)$"
)
_S3_ROOT = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?$")


@dataclass(frozen=True)
class MetaflowSettings:
    """How the Metaflow flows of one backend compile and where their packages go."""

    backend: str
    target: Literal["argo", "stepfunctions"]
    datastore_root: str
    image: str
    user: str
    python: str
    parallelism: int
    s3_endpoint_url: str | None
    #: ``METAFLOW_*`` (and ``USERNAME``) settings of the compile, before a flow's own ``env``.
    env: Mapping[str, str]
    #: Partition, region and account for ARNs (Step Functions), region for S3 clients.
    aws: Mapping[str, str] = field(default_factory=dict)
    aws_endpoint_url: str | None = None
    profile: str | None = None

    @property
    def bucket(self) -> str:
        return self.datastore_root[len("s3://") :].split("/", 1)[0]


def _problem(backend: BackendSpec, key: str, message: str, hint: str | None = None) -> Problem:
    return Problem(backend.loc, f"backends.{backend.name}.metaflow.{key}".rstrip("."), message, hint)


def settings_for(backend: BackendSpec, manifest_dir: Path) -> MetaflowSettings:
    """Parse and check ``backends.NAME.metaflow`` (its structure was checked by the schema)."""
    raw: Mapping[str, Any] = backend.settings.get("metaflow") or {}
    problems: list[Problem] = []
    root, image, user = _checked(backend, raw, problems)
    env: dict[str, str] = {
        "USERNAME": user,
        "METAFLOW_USER": user,
        "METAFLOW_DEFAULT_DATASTORE": "s3",
        "METAFLOW_DATASTORE_SYSROOT_S3": root,
        "METAFLOW_KUBERNETES_CONTAINER_IMAGE": image,
        "METAFLOW_BATCH_CONTAINER_IMAGE": image,
        "METAFLOW_SERVICE_VERSION_CHECK": "false",
        "METAFLOW_DEFAULT_METADATA": "service" if raw.get("metadata_service") else "local",
    }
    optional: dict[str, Any] = {
        "METAFLOW_SERVICE_URL": raw.get("metadata_service"),
        "METAFLOW_S3_ENDPOINT_URL": raw.get("s3_endpoint_url"),
        "METAFLOW_ARGO_EVENTS_WEBHOOK_URL": raw.get("events_webhook_url"),
        "METAFLOW_ECS_S3_ACCESS_IAM_ROLE": raw.get("batch_job_role"),
        "METAFLOW_SFN_DYNAMO_DB_TABLE": raw.get("dynamo_db_table"),
    }
    optional.update(_argo_environment(backend, raw))
    optional.update(_stepfunctions_environment(backend))
    aws: dict[str, str] = {}
    endpoint = profile = None
    if backend.renders == "stepfunctions" and backend.stepfunctions is not None:
        aws = _aws_identity(backend.stepfunctions)
        env["AWS_DEFAULT_REGION"] = backend.stepfunctions.region
        endpoint = backend.settings.get("endpoint_url")
        profile = backend.settings.get("profile")
    env.update({k: str(v) for k, v in optional.items() if v not in (None, "")})
    problems.extend(_add_config(backend, raw, env))
    parallelism = raw.get("parallelism", DEFAULT_PARALLELISM)
    if problems:
        raise ManifestError(problems)
    return MetaflowSettings(
        backend=backend.name,
        target=backend.renders,
        datastore_root=root,
        image=image,
        user=user,
        python=_python(raw, manifest_dir),
        parallelism=int(parallelism) if isinstance(parallelism, int) else DEFAULT_PARALLELISM,
        s3_endpoint_url=str(raw["s3_endpoint_url"]) if raw.get("s3_endpoint_url") else None,
        env=env,
        aws=aws,
        aws_endpoint_url=str(endpoint) if endpoint else None,
        profile=str(profile) if profile else None,
    )


def _checked(backend: BackendSpec, raw: Mapping[str, Any], problems: list[Problem]) -> tuple[str, str, str]:
    """The datastore root, image and user, each checked (problems appended, never raised here)."""
    root = str(raw.get("datastore_root", "")).rstrip("/")
    if not _S3_ROOT.fullmatch(root):
        problems.append(
            _problem(
                backend,
                "datastore_root",
                f"{root!r} is not an S3 datastore root",
                "write s3://BUCKET/PREFIX: Argo Workflows and Step Functions both need Metaflow's S3 datastore",
            )
        )
    image = str(raw.get("image") or "")
    if not image:
        problems.append(_problem(backend, "image", "no image: the container image of the steps must be pinned"))
    user = str(raw.get("user") or DEFAULT_USER)
    if not re.fullmatch(r"[a-z][a-z0-9_-]*", user):
        problems.append(_problem(backend, "user", f"{user!r} is not a user name", "lowercase letters, digits, _ and -"))
    return root, image, user


def _python(raw: Mapping[str, Any], manifest_dir: Path) -> str:
    """The interpreter Metaflow runs under: the setting (relative to the manifest when it is a path) or ours."""
    python = str(raw.get("python") or sys.executable)
    if raw.get("python"):
        candidate = Path(python).expanduser()
        if not candidate.is_absolute() and "/" in python:
            candidate = manifest_dir / candidate
        python = str(candidate) if "/" in python else python
    return python


def _argo_environment(backend: BackendSpec, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Metaflow's settings for Argo, taken from the backend's ``argo:`` block (empty for other targets)."""
    if backend.renders != "argo" or backend.argo is None:
        return {}
    argo = backend.argo
    return {
        "METAFLOW_KUBERNETES_NAMESPACE": argo.namespace,
        "METAFLOW_KUBERNETES_SERVICE_ACCOUNT": argo.service_account,
        "METAFLOW_ARGO_EVENTS_SENSOR_NAMESPACE": argo.sensor_namespace,
        "METAFLOW_ARGO_EVENTS_EVENT_BUS": argo.event_bus,
        "METAFLOW_ARGO_EVENTS_EVENT_SOURCE": argo.event_source,
        "METAFLOW_ARGO_EVENTS_EVENT": argo.event_name,
        "METAFLOW_ARGO_EVENTS_SERVICE_ACCOUNT": raw.get("events_service_account") or argo.service_account,
        # only Metaflow's own create reads it (tests deploy with it); flowplan writes the CronWorkflow
        "METAFLOW_ARGO_WORKFLOWS_USE_SCHEDULES": "true" if argo.schedule_field == "schedules" else "false",
    }


def _stepfunctions_environment(backend: BackendSpec) -> dict[str, Any]:
    """Metaflow's settings for Step Functions, from the ``stepfunctions:`` block (empty for other targets)."""
    if backend.renders != "stepfunctions" or backend.stepfunctions is None:
        return {}
    sfn = backend.stepfunctions
    return {
        "METAFLOW_SFN_IAM_ROLE": sfn.execution_role_arn,
        "METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE": sfn.events_role_arn,
        "METAFLOW_BATCH_JOB_QUEUE": sfn.job_queue,
    }


def _aws_identity(sfn: StepFunctionsSettings) -> dict[str, str]:
    from backends.stepfunctions.compile import partition

    return {"partition": partition(sfn.region), "region": sfn.region, "account": sfn.account_id}


def _add_config(backend: BackendSpec, raw: Mapping[str, Any], env: dict[str, str]) -> list[Problem]:
    """``metaflow.config`` into ``env``; a key flowplan sets from the manifest is a problem, not an override."""
    problems = []
    for key, value in dict(raw.get("config") or {}).items():
        if key in env:
            problems.append(
                _problem(
                    backend,
                    f"config.{key}",
                    f"{key} is set by flowplan from the manifest",
                    "set it through the manifest key the table in docs/metaflow.md names",
                )
            )
            continue
        env[str(key)] = "true" if value is True else "false" if value is False else str(value)
    return problems


def flow_environment(settings: MetaflowSettings, flow: Flow) -> dict[str, str]:
    """The settings' environment with the flow's ``metaflow.env`` over it; raises ManifestError on a clash."""
    env = dict(settings.env)
    source = flow.metaflow
    if source is None:
        return env
    for key, value in source.env.items():
        if key in env and key not in PINNED_FLOW_ENV and env[key] != value:
            raise ManifestError(
                Problem(
                    source.loc,
                    f"flows.{flow.name}.metaflow.env.{key}",
                    f"{key} is set by flowplan from backend {settings.backend!r}",
                    "change it in the backend's metaflow: settings",
                )
            )
        env[key] = value
    return env


def compile_environment(flow_env: Mapping[str, str], metaflow_home: str, settings: MetaflowSettings) -> dict[str, str]:
    """The whole environment of a compile or upload process (nothing else is inherited)."""
    env = {k: v for k, v in os.environ.items() if _PASSED_THROUGH.fullmatch(k)}
    env.update(
        {
            "METAFLOW_HOME": metaflow_home,
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONNOUSERSITE": "1",
            "TZ": "UTC",
            "LC_ALL": "C.UTF-8",
            "LANG": "C.UTF-8",
        }
    )
    if settings.aws_endpoint_url:
        env["AWS_ENDPOINT_URL"] = settings.aws_endpoint_url
    if settings.profile:
        env["AWS_PROFILE"] = settings.profile
    env.update(flow_env)
    return env
