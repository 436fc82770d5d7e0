"""The pure parts: cron conversion, normalisation, execution inputs, settings → environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.metaflow.common import standard_cron
from backends.metaflow.compile import metaflow_branch
from backends.metaflow.normalize import comparable, drop_nulls, normalize, stable_file_name
from backends.metaflow.settings import settings_for
from backends.metaflow.stepfunctions import execution_input
from planner.errors import ManifestError
from planner.manifest import ArgoSettings, Backend, StepFunctionsSettings


@pytest.mark.parametrize(
    ("written", "standard"),
    [
        ("0 2 * * *", "0 2 * * *"),  # @schedule(cron=...) on Argo: standard cron
        ("0 0 * * ? *", "0 0 * * *"),  # @schedule(daily=True)
        ("0 * * * ? *", "0 * * * *"),  # hourly
        ("0 0 ? * SUN *", "0 0 * * SUN"),  # weekly
        ("15 6 ? * 2-6 *", "15 6 * * 1-5"),  # AWS weekdays (1 = Sunday) to standard (0 = Sunday)
        ("0 12 ? * 1,7 *", "0 12 * * 0,6"),
    ],
)
def test_decorator_crons_become_standard_cron(written: str, standard: str) -> None:
    assert standard_cron(written) == standard


def test_branches_become_metaflow_branches() -> None:
    assert metaflow_branch("pr-42") == "pr_42"
    assert metaflow_branch("prod") == "prod"


def test_normalize_drops_timestamps_and_nulls_and_pins_parameter_files() -> None:
    command = "python -m metaflow.plugins.argo.set_parameters xvouvflmoa alpha,f,x && . `pwd`/xvouvflmoa && python f.py"
    raw = {
        "metadata": {"annotations": {"metaflow/deployment_timestamp": "2026-01-01T00:00:00", "a": "b"}},
        "spec": {
            "podMetadata": {"annotations": {"metaflow/deployment_timestamp": "x"}},
            "templates": [{"container": {"args": None, "command": ["bash", "-c", command]}}],
        },
    }
    body = normalize(raw, "recsys.prod.linearflow")
    name = stable_file_name("recsys.prod.linearflow", 0)
    assert body["metadata"]["annotations"] == {"a": "b"}
    assert body["spec"]["podMetadata"] == {"annotations": {}}
    assert body["spec"]["templates"][0]["container"] == {"command": ["bash", "-c", command.replace("xvouvflmoa", name)]}
    assert len(name) == 10 and name.isalpha() and name.islower()
    assert normalize(raw, "recsys.prod.linearflow") == body  # deterministic
    assert drop_nulls({"a": [None, {"b": None}]}) == {"a": [None, {}]}


def test_comparable_replaces_tokens_packages_and_pinned_version_keys() -> None:
    sha = "ab" + "0" * 38
    version = json.dumps({"metaflow_version": "2.19.39", "commit_sha": "c0ffee", "platform": "Darwin"})
    body = {
        "metadata": {"labels": {"flowplan.dev/project": "recsys", "keep": "me"}},
        "env": [
            {"name": "METAFLOW_CODE_URL", "value": f"s3://b/metaflow/F/data/ab/{sha}"},
            {"name": "METAFLOW_VERSION", "value": version},
            {"name": "TOKEN", "value": "mfprj-abc-0-wxyz"},
        ],
    }
    out = comparable(body, seed="s", tokens=["mfprj-abc-0-wxyz"], shas=[sha])
    assert out["metadata"]["labels"] == {"keep": "me"}
    assert out["env"][0]["value"] == "s3://b/metaflow/F/data/<xx>/<code-package-sha>"
    assert json.loads(out["env"][1]["value"]) == {"metaflow_version": "2.19.39"}
    assert out["env"][2]["value"] == "<production-token>"


def test_execution_inputs_are_metaflows() -> None:
    assert execution_input({}) == {"Input": {"Parameters": "{}"}}
    transformer = execution_input({"key": "object_key"})["InputTransformer"]
    assert transformer["InputPathsMap"] == {"key": "$.detail.object_key"}
    filled = transformer["InputTemplate"].replace("<key>", "in/a.csv")
    assert json.loads(json.loads(filled)["Parameters"]) == {"key": "in/a.csv"}


def _backend(kind: str, metaflow: dict[str, object]) -> Backend:
    return Backend(
        "ml",
        kind,  # type: ignore[arg-type]
        {"metaflow": metaflow},
        argo=ArgoSettings(namespace="ml", sensor_namespace="ml-events", service_account="runner")
        if kind == "argo"
        else None,
        stepfunctions=StepFunctionsSettings(
            region="eu-west-1",
            account_id="123456789012",
            execution_role_arn="arn:aws:iam::123456789012:role/run",
            events_role_arn="arn:aws:iam::123456789012:role/events",
            job_queue="q",
        )
        if kind == "stepfunctions"
        else None,
    )


def test_settings_become_the_compile_environment() -> None:
    argo = settings_for(_backend("argo", {"datastore_root": "s3://mf-bucket/mf/", "image": "img"}), Path())
    assert argo.datastore_root == "s3://mf-bucket/mf"
    assert argo.env["METAFLOW_DATASTORE_SYSROOT_S3"] == "s3://mf-bucket/mf"
    assert argo.env["METAFLOW_KUBERNETES_NAMESPACE"] == "ml"
    assert argo.env["METAFLOW_ARGO_EVENTS_SENSOR_NAMESPACE"] == "ml-events"
    assert argo.env["METAFLOW_ARGO_EVENTS_SERVICE_ACCOUNT"] == "runner"
    assert argo.env["METAFLOW_DEFAULT_METADATA"] == "local"
    assert argo.env["USERNAME"] == argo.env["METAFLOW_USER"] == "flowplan"
    sfn = settings_for(
        _backend(
            "stepfunctions", {"datastore_root": "s3://mf-bucket", "image": "img", "metadata_service": "http://md"}
        ),
        Path(),
    )
    assert sfn.env["METAFLOW_SFN_IAM_ROLE"].endswith(":role/run")
    assert sfn.env["METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE"].endswith(":role/events")
    assert sfn.env["METAFLOW_BATCH_JOB_QUEUE"] == "q"
    assert sfn.env["METAFLOW_DEFAULT_METADATA"] == "service"
    assert sfn.aws == {"partition": "aws", "region": "eu-west-1", "account": "123456789012"}
    with pytest.raises(ManifestError, match="is not an S3 datastore root"):
        settings_for(_backend("argo", {"datastore_root": "gs://mf-bucket", "image": "img"}), Path())
