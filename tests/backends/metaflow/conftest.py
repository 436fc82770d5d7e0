"""Fixtures of the Metaflow tests: a workspace with the test flows, moto's S3 (and Batch), a cluster.

Everything runs Metaflow's own code: flowplan's compile driver and, for the
reference outputs, ``python flow.py argo-workflows create --only-json``.
Each command compiles afresh: the compile cache belongs to the opened backend
(:class:`backends.metaflow.compile.MetaflowWorkspace`) and goes when the command
ends, so a flow compiles once per command however often that command plans.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from planner.cli import run
from tests.support.aws_fixtures import AwsEnv

FLOWS = Path(__file__).resolve().parent / "flows"
BUCKET = "mf-data"
ROOT = f"s3://{BUCKET}/metaflow"
IMAGE = "registry.example/ml/metaflow:2.19.39-py3.11"
QUEUE = "ml-jobs"


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@dataclass
class Workspace:
    """A directory holding flows.yaml and a copy of the test flows (one directory per flow)."""

    root: Path
    aws: AwsEnv
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def flows(self) -> Path:
        return self.root / "flows"

    def flow_file(self, name: str) -> Path:
        return self.flows / name / f"{name}_flow.py"

    def write(self, manifest: dict[str, Any]) -> None:
        self.manifest = manifest
        (self.root / "flows.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))

    def flowplan(self, command: str, *args: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run([command, "-f", str(self.root / "flows.yaml"), *args])
        return Result(code, out.getvalue(), err.getvalue())

    def edit(self, flow: str, old: str, new: str) -> None:
        path = self.flow_file(flow)
        text = path.read_text()
        assert old in text, f"{old!r} is not in {path}"
        path.write_text(text.replace(old, new, 1))

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout


def metaflow_settings(aws: AwsEnv, **extra: Any) -> dict[str, Any]:
    return {"datastore_root": ROOT, "image": IMAGE, "s3_endpoint_url": aws.url, **extra}


def argo_backend(aws: AwsEnv, **extra: Any) -> dict[str, Any]:
    """A files backend rendering Argo manifests (no cluster needed), Metaflow packages in moto's S3."""
    return {
        "type": "files",
        "argo": {"namespace": "ml", "service_account": "ml-runner", "sensor_namespace": "ml-events"},
        "metaflow": metaflow_settings(aws, **extra),
    }


def sfn_settings(aws: AwsEnv) -> dict[str, Any]:
    return {
        "region": aws.region,
        "account_id": aws.account,
        "execution_role_arn": f"arn:aws:iam::{aws.account}:role/sfn-run",
        "events_role_arn": f"arn:aws:iam::{aws.account}:role/sfn-events",
        "job_queue": QUEUE,
    }


def manifest(backend: dict[str, Any], flows: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"version": 1, "project": "recsys", "backends": {"ml": backend}, "flows": flows, **top}


def metaflow_flow(name: str, **extra: Any) -> dict[str, Any]:
    return {"metaflow": {"file": f"flows/{name}/{name}_flow.py"}, **extra}


def make_bucket(aws: AwsEnv) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": aws.region})


def make_batch_queue(aws: AwsEnv) -> str:
    """A managed EC2 compute environment and the job queue Metaflow describes while compiling."""
    ec2, iam, batch = aws.client("ec2"), aws.client("iam"), aws.client("batch")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="batch", Description="batch", VpcId=vpc)["GroupId"]
    role = iam.create_role(RoleName="batch-service", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    profile = iam.create_instance_profile(InstanceProfileName="batch-instance")["InstanceProfile"]["Arn"]
    environment = batch.create_compute_environment(
        computeEnvironmentName="ml-ce",
        type="MANAGED",
        state="ENABLED",
        computeResources={
            "type": "EC2",
            "minvCpus": 0,
            "maxvCpus": 4,
            "instanceTypes": ["m5.large"],
            "subnets": [subnet],
            "securityGroupIds": [group],
            "instanceRole": profile,
        },
        serviceRole=role,
    )
    queue = batch.create_job_queue(
        jobQueueName=QUEUE,
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment["computeEnvironmentArn"]}],
    )
    return str(queue["jobQueueArn"])


@pytest.fixture
def workspace(aws: AwsEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    """The test flows copied into a tmp dir, moto's S3 bucket, flowplan's own lock holder."""
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copytree(FLOWS, root / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    make_bucket(aws)
    aws.proxy.reset_counts()
    monkeypatch.setenv("FLOWPLAN_LOCK_HOLDER", "pytest")
    monkeypatch.chdir(root)
    yield Workspace(root, aws)
