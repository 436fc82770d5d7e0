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

import http.server
import json
import shutil
import threading
from pathlib import Path
from typing import ClassVar

import pytest

from planner.contract import LockInfo
from tests.backends.argo.test_live_support import Cluster, cluster
from tests.backends.stepfunctions.helpers import TINY, Workspace
from tests.security.conftest import attack
from tests.support.aws_fixtures import AwsEnv
from tests.support.fixtures import K8sEnv
from tests.support.kubeconfig import write_kubeconfig
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
    result = workspace.flowplan("plan")
    assert result.code == 0, result.text
    environment = json.loads(seen.read_text())
    assert set(OPERATOR_SECRETS) & set(environment) == set()
    assert not [key for key in environment if key.startswith("AWS_")]
    assert not set(OPERATOR_SECRETS.values()) & set(environment.values())


ARGO_MANIFEST = """\
version: 1
project: sec
backends:
  cluster:
    type: argo
    kubeconfig: {kubeconfig}
    {extra}
    argo: {{namespace: ml}}
flows:
  greet:
    image: busybox
    steps:
      start: {{command: [echo, hi]}}
"""


def _argo_plan(root: Path, kubeconfig: Path, extra: str = "") -> tuple[int, str]:
    import contextlib
    import io

    from planner.cli import run

    manifest = root / "flows.yaml"
    manifest.write_text(ARGO_MANIFEST.format(kubeconfig=kubeconfig, extra=extra))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(["plan", "-f", str(manifest)])
    return code, out.getvalue() + err.getvalue()


@attack(
    "what the repository decides: an allowed manifest kubeconfig still never runs an exec or auth-provider command",
    fixed=True,
)
@pytest.mark.parametrize("user", ["exec", "auth-provider"])
def test_an_allowed_manifest_kubeconfig_never_runs_a_credential_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, user: str
) -> None:
    marker = tmp_path / "pwned"
    command = f"touch {marker}"
    users = {
        "exec": {
            "exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "sh", "args": ["-c", command]}
        },
        "auth-provider": {
            "auth-provider": {"name": "gcp", "config": {"cmd-path": f"sh -c '{command}'", "cmd-args": ""}}
        },
    }
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
        "users": [{"name": "u", "user": users[user]}],
    }
    (tmp_path / "repo").mkdir()
    kubeconfig = tmp_path / "repo" / "kubeconfig.yaml"
    kubeconfig.write_text(json.dumps(config))
    monkeypatch.setenv("FLOWPLAN_ALLOW_MANIFEST_CONNECTION", "1")
    code, text = _argo_plan(tmp_path / "repo", kubeconfig)
    assert not marker.exists()
    assert code == 1 and "runs a credential command" in text and "Traceback" not in text, text


@attack("local configuration: a kubeconfig that is not YAML must be a clear error naming the file", fixed=True)
def test_a_kubeconfig_that_is_not_yaml_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "repo").mkdir()
    broken = tmp_path / "kubeconfig"
    broken.write_text("apiVersion: v1\nclusters: [\n  {name: c: d\n")
    monkeypatch.delenv("FLOWPLAN_ALLOW_MANIFEST_CONNECTION")
    monkeypatch.setenv("KUBECONFIG", str(broken))
    code, text = _argo_plan(tmp_path / "repo", tmp_path / "unused")
    assert code == 1 and "unexpectedly" not in text, text
    assert str(broken) in text and "not a usable kubeconfig" in text


@attack(
    "what the repository decides: an endpoint_url (even from a var file) or verify_tls: false must not choose where "
    "the operator's AWS credentials go",
    fixed=True,
)
def test_the_manifests_aws_endpoint_is_ignored_without_the_operators_opt_in(
    aws: AwsEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOWPLAN_ALLOW_MANIFEST_CONNECTION")
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.url)  # the operator's own AWS configuration
    text = TINY.replace("    endpoint_url:", "    verify_tls: false\n    endpoint_url:")
    workspace = Workspace(tmp_path, aws, text, endpoint_url="http://127.0.0.1:9")
    result = workspace.run("plan")
    assert result.code == 0, result.text
    assert "ignored endpoint_url: http://127.0.0.1:9, verify_tls: false from the manifest" in result.text
    assert "FLOWPLAN_ALLOW_MANIFEST_CONNECTION=1" in result.text
    assert aws.proxy.counts(), "the operator's endpoint was not used"


@attack(
    "what the repository decides: a kubeconfig, context or verify_tls: false in the manifest must not choose the "
    "cluster the operator's credentials go to",
    fixed=True,
)
def test_the_manifests_kubeconfig_is_ignored_without_the_operators_opt_in(
    k8s: K8sEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attacker = write_kubeconfig(tmp_path / "repo" / "kubeconfig.yaml", "https://127.0.0.1:9", "stolen?")
    monkeypatch.delenv("FLOWPLAN_ALLOW_MANIFEST_CONNECTION")
    monkeypatch.setenv("KUBECONFIG", str(k8s.kubeconfig_path))
    code, text = _argo_plan(tmp_path / "repo", attacker, "context: evil\n    verify_tls: false")
    assert code == 0, text
    assert f"ignored kubeconfig: {attacker}, context: evil, verify_tls: false from the manifest" in text
    assert "FLOWPLAN_ALLOW_MANIFEST_CONNECTION=1" in text
    assert k8s.url in text and "TLS NOT VERIFIED" not in text

    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    code, text = _argo_plan(tmp_path / "repo", attacker)
    assert code == 1 and "no kubeconfig found" in text and "was ignored" in text, text


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Another host: records every request (and its Authorization header) and answers an empty listing."""

    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        body = b'{"kind": "CronWorkflowList", "metadata": {}, "items": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@attack("malformed answers: a redirect to another host must not be followed (with or without the token)", fixed=True)
@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_from_the_api_server_is_not_followed(cluster: Cluster, status: int) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Recorder.seen.clear()
    try:
        location = f"http://127.0.0.1:{server.server_address[1]}/apis/argoproj.io/v1alpha1/cronworkflows"
        cluster.proxy.rules.append(FaultRule(Respond(status, b"", (("Location", location),)), key="list cronworkflows"))
        result = cluster.flowplan("plan")
    finally:
        server.shutdown()
        server.server_close()
    assert _Recorder.seen == []
    assert result.code == 1 and "Traceback" not in result.text and "unexpectedly" not in result.text
    assert "follows no redirect" in result.text and "cronworkflows" in result.text.lower(), result.text


@attack("malformed answers: a huge answer must be refused after a bounded read, not read into memory", fixed=True)
def test_a_huge_answer_is_refused_after_a_bounded_read(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWPLAN_MAX_ANSWER_BYTES", str(64 * 1024))
    padding = "x" * (256 * 1024)
    body = f'{{"kind": "CronWorkflowList", "metadata": {{}}, "items": [], "padding": "{padding}"}}'.encode()
    cluster.proxy.rules.append(FaultRule(Respond(200, body), key="list cronworkflows"))
    result = cluster.flowplan("plan")
    assert result.code == 1 and "Traceback" not in result.text and "unexpectedly" not in result.text
    assert "cronworkflows" in result.text and "65536 bytes" in result.text, result.text
    assert "FLOWPLAN_MAX_ANSWER_BYTES" in result.text


class _S3Recorder(http.server.BaseHTTPRequestHandler):
    """A host of the manifest author's: records each request and its Authorization header, answers 404."""

    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_HEAD(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD

    def log_message(self, *args: object) -> None:
        pass


@attack(
    "what the repository decides: a Metaflow s3_endpoint_url in the manifest must not receive the operator's signed "
    "S3 requests without the opt-in",
    fixed=False,
)
def test_a_manifests_metaflow_s3_endpoint_gets_no_signed_request_without_the_opt_in(
    aws: AwsEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.backends.metaflow.conftest import FLOWS, argo_backend, make_bucket, manifest, metaflow_flow
    from tests.backends.metaflow.conftest import Workspace as FlowWorkspace

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _S3Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _S3Recorder.seen.clear()
    root = tmp_path / "repo"
    (root / "flows").mkdir(parents=True)
    shutil.copytree(FLOWS / "linear", root / "flows" / "linear")
    make_bucket(aws)
    monkeypatch.delenv("FLOWPLAN_ALLOW_MANIFEST_CONNECTION")
    workspace = FlowWorkspace(root, aws)
    backend = argo_backend(aws, s3_endpoint_url=f"http://127.0.0.1:{server.server_address[1]}")
    workspace.write(manifest(backend, {"linear": metaflow_flow("linear")}))
    try:
        result = workspace.flowplan("plan")
    finally:
        server.shutdown()
        server.server_close()
    assert _S3Recorder.seen == [], result.text
