"""Attacks that need a live API or a real child process (issue 19), on the Kubernetes API test server and moto.

A compromised or broken endpoint (or a proxy in the way) answers 200 with a body that is not what
the API promises. flowplan must report that as a backend error naming the call and the content
type, never crash, and never leave its lock held because it could not read its own create.

The repository (the manifest, its var files, the flow files) does not decide where the operator's
credentials go or what runs with them: a kubeconfig, context, endpoint or ``verify_tls: false`` it
names is used only with the operator's opt-in, credential commands run only from the operator's
kubeconfig, and a Metaflow flow compiled during ``plan`` sees none of the CI's tokens.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.contract import LockInfo
from tests.backends.argo.test_live_support import Cluster, cluster
from tests.backends.stepfunctions.helpers import TINY, Workspace
from tests.security.conftest import attack
from tests.support.aws_fixtures import AwsEnv
from tests.support.proxy import FaultRule, Respond

__all__ = ["cluster"]


BODIES = {
    "truncated JSON": (b'{"kind": "CronWorkflowList", "items": [', "application/json"),
    "an HTML page": (b"<html><body>502 Bad Gateway</body></html>", "text/html"),
}


@attack(
    "malformed answers: a 200 answer with truncated JSON or an HTML body must be a backend error naming the call",
    fixed=True,
)
@pytest.mark.parametrize("what", sorted(BODIES))
def test_a_garbled_listing_is_a_backend_error_naming_the_call(cluster: Cluster, what: str) -> None:
    body, content_type = BODIES[what]
    cluster.proxy.rules.append(
        FaultRule(Respond(200, body, (("Content-Type", content_type),)), key="list cronworkflows")
    )
    result = cluster.flowplan("plan")
    assert result.code == 1
    assert "unexpectedly" not in result.text and "Traceback" not in result.text
    assert "cronworkflows" in result.text.lower() and content_type in result.text


@attack("malformed answers: a garbled Lease create must not leave the lock held until its TTL", fixed=True)
def test_a_garbled_lease_create_does_not_leave_the_lock_held(cluster: Cluster) -> None:
    cluster.proxy.rules.append(
        FaultRule(Respond(201, b"<html>oops</html>", (("Content-Type", "text/html"),)), key="create leases", times=1)
    )
    first = cluster.apply()
    assert first.code == 1 and "unexpectedly" not in first.text
    cluster.proxy.rules.clear()
    backend = cluster.backend()
    lock = backend.lock(backend.scope)
    held = lock.current()
    assert held is None or held.pid == LockInfo.here().pid  # released, or recognised as ours and taken again
    assert cluster.apply().code == 0


WRONG_SHAPES = {
    "a JSON list": b"[]",
    "items that are not a list": b'{"kind": "CronWorkflowList", "metadata": {}, "items": {"a": 1}}',
    "an empty body": b"",
}


@attack(
    "malformed answers: a 200 listing of valid JSON in the wrong shape must be a backend error, not an empty cluster",
    fixed=True,
)
@pytest.mark.parametrize("what", sorted(WRONG_SHAPES))
def test_a_listing_of_the_wrong_shape_is_a_backend_error(cluster: Cluster, what: str) -> None:
    cluster.proxy.rules.append(
        FaultRule(Respond(200, WRONG_SHAPES[what], (("Content-Type", "application/json"),)), key="list cronworkflows")
    )
    result = cluster.flowplan("plan")
    assert result.code == 1, result.text
    assert "unexpectedly" not in result.text and "Traceback" not in result.text
    assert "cronworkflows" in result.text.lower() and "application/json" in result.text


AWS_BODIES = {
    "truncated JSON": (b'{"stateMachines": [', "application/x-amz-json-1.0"),
    "an HTML page": (b"<html><body>502 Bad Gateway</body></html>", "text/html"),
    "a JSON list": (b"[]", "application/x-amz-json-1.0"),
}


@attack(
    "malformed answers: a 200 AWS answer with truncated JSON, an HTML body or a JSON list must be a backend error "
    "naming the operation",
    fixed=True,
)
@pytest.mark.parametrize("what", sorted(AWS_BODIES))
def test_a_garbled_aws_answer_is_a_backend_error_naming_the_operation(aws: AwsEnv, tmp_path: Path, what: str) -> None:
    body, content_type = AWS_BODIES[what]
    aws.proxy.rules.append(FaultRule(Respond(200, body, (("Content-Type", content_type),)), key="tag:GetResources"))
    result = Workspace(tmp_path, aws, TINY).run("plan")
    assert result.code == 1, result.text
    assert "unexpectedly" not in result.text and "Traceback" not in result.text
    assert "tag:GetResources" in result.text and content_type in result.text


@attack("local configuration: a missing AWS profile named by $AWS_PROFILE must be named in the error", fixed=True)
def test_a_missing_aws_profile_from_the_environment_is_named(
    aws: AwsEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "nobody-here")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    result = Workspace(tmp_path, aws, TINY).run("plan")
    assert result.code == 1 and "Traceback" not in result.text
    assert "'nobody-here' named by $AWS_PROFILE" in result.text and "None" not in result.text, result.text


ENV_DUMPING_FLOW = """\
import json, os

with open({out!r}, "w") as handle:
    json.dump(dict(os.environ), handle)

from metaflow import FlowSpec, step


class DumpFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    DumpFlow()
"""

#: What the operator's CI environment holds that a flow file (the pull request's code) must never see.
OPERATOR_SECRETS = {
    "GITHUB_TOKEN": "ghp_operator0000000000000000000000000000",
    "KUBECONFIG": "/operator/.kube/config",
    "AWS_ACCESS_KEY_ID": "AKIAOPERATOR00000000",
    "AWS_SECRET_ACCESS_KEY": "operator-secret-key",
    "AWS_SESSION_TOKEN": "operator-session-token",
    "VAULT_TOKEN": "hvs.operator",
}


@attack(
    "what the repository decides: a Metaflow flow file compiled during plan must not see the CI's tokens", fixed=True
)
def test_a_metaflow_flow_compiled_during_plan_sees_no_credentials(
    aws: AwsEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backends.metaflow.compile import cache_clear
    from tests.backends.metaflow.conftest import Workspace as FlowWorkspace
    from tests.backends.metaflow.conftest import argo_backend, make_bucket, manifest, metaflow_flow

    root = tmp_path / "repo"
    (root / "flows" / "dump").mkdir(parents=True)
    seen = tmp_path / "seen.json"
    (root / "flows" / "dump" / "dump_flow.py").write_text(ENV_DUMPING_FLOW.format(out=str(seen)))
    make_bucket(aws)
    for key, value in OPERATOR_SECRETS.items():
        monkeypatch.setenv(key, value)
    workspace = FlowWorkspace(root, aws)
    workspace.write(manifest(argo_backend(aws), {"dump": metaflow_flow("dump")}))
    cache_clear()
    result = workspace.flowplan("plan")
    assert result.code == 0, result.text
    environment = json.loads(seen.read_text())
    assert set(OPERATOR_SECRETS) & set(environment) == set()
    assert not [key for key in environment if key.startswith("AWS_")]
    assert not set(OPERATOR_SECRETS.values()) & set(environment.values())
