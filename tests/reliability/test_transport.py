"""Transport security: TLS verified unless a backend says otherwise (and then every plan warns); no credential
ever reaches an output, not even ``--debug`` tracebacks of failing runs.

- Argo: the kubernetes client verifies the server certificate by default; a
  kubeconfig that turns verification off (``insecure-skip-tls-verify``) is
  refused unless the backend itself says ``verify_tls: false``, which the plan
  warns about.
- Step Functions: boto3 verifies by default; ``verify_tls: false`` is warned about.
- Secrets: a bearer token in the kubeconfig, AWS keys in the environment and a
  sensitive var never appear in stdout, stderr or flowplan's log records of
  successful runs and of failing ones (401, unreachable server, a garbled
  answer that escapes as an unexpected error, access denied), with ``--debug``
  and without.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from planner.cli import run
from tests.reliability.harness import Recorder
from tests.reliability.manifests import manifest
from tests.support.kubeconfig import kubeconfig_dict, write_kubeconfig
from tests.support.proxy import FaultRule, Respond, start_proxy

TOKEN = "tok-SENTINEL-7f3a9c1e5b2d4f60"
BAD_TOKEN = "tok-SENTINEL-rejected-0d1e2f3a"
ACCESS_KEY = "AKIASENTINEL7F3A9C1E"
SECRET_KEY = "secret-SENTINEL-kX9+q2/ZvB4mN7pR1sT6wY8"
SESSION_TOKEN = "session-SENTINEL-FwoGZXIvYXdzEBYaD"
SENSITIVE = "var-SENTINEL-hunter2-b7c1"
SENTINELS = (TOKEN, BAD_TOKEN, ACCESS_KEY, SECRET_KEY, SESSION_TOKEN, SENSITIVE, "SENTINEL")


@contextlib.contextmanager
def _captured() -> Iterator[dict[str, Any]]:
    """stdout, stderr and every record of the ``flowplan`` loggers (DEBUG and up) while flowplan runs."""
    box: dict[str, Any] = {"records": []}

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            box["records"].append(self.format(record))

    handler = Keep(logging.DEBUG)
    logger = logging.getLogger("flowplan")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield box
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
        box["text"] = out.getvalue() + err.getvalue() + "\n".join(box["records"])


def _flowplan(args: list[str], *, debug: bool) -> tuple[int, str]:
    with _captured() as box:
        code = run(args, debug=debug)
    return code, box["text"]


def _assert_clean(text: str, what: str) -> None:
    for sentinel in SENTINELS:
        assert sentinel not in text, f"{what}: {sentinel!r} in the output:\n{text[-3000:]}"


# --------------------------------------------------------------------------- TLS


def _argo_manifest(tmp_path: Path, kubeconfig: Path, verify: bool | None = None) -> Path:
    text = manifest("argo", 2)
    extra = f"    kubeconfig: {kubeconfig}\n" + (
        f"    verify_tls: {str(verify).lower()}\n" if verify is not None else ""
    )
    text = text.replace("    type: argo\n", "    type: argo\n" + extra)
    path = tmp_path / "flows.yaml"
    path.write_text(text)
    return path


def _aws_manifest(tmp_path: Path, aws: Any, verify: bool | None = None) -> list[str]:
    text = manifest("stepfunctions", 2)
    if verify is not None:
        text = text.replace(
            "    type: stepfunctions\n", f"    type: stepfunctions\n    verify_tls: {str(verify).lower()}\n"
        )
    path = tmp_path / "flows.yaml"
    path.write_text(text)
    values = {"region": aws.region, "account_id": aws.account, "endpoint_url": aws.url}
    var_file = tmp_path / "test.vars.yaml"
    var_file.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in values.items()))
    return ["-f", str(path), "--var-file", str(var_file)]


def test_tls_is_verified_by_default_on_both_backends(tmp_path: Path, trial: Recorder, request: Any) -> None:
    from backends.argo.backend import ArgoBackend
    from backends.stepfunctions.backend import StepFunctionsBackend
    from planner.contract import Scope
    from planner.manifest import load_manifest

    trial.family, trial.backend = "transport security", "argo + stepfunctions"
    kubeconfig = write_kubeconfig(tmp_path / "kc", "https://127.0.0.1:6443", TOKEN)
    loaded = load_manifest(_argo_manifest(tmp_path, kubeconfig))
    argo = ArgoBackend(loaded.backends["cluster"], Scope("cluster", "rel", "prod"))
    assert argo.connection.api_client().configuration.verify_ssl is True
    assert argo.warnings() == ()
    trial.check("Argo: the kubernetes client verifies TLS by default")

    aws_loaded = load_manifest(
        _argo_manifest(tmp_path, kubeconfig).with_name("aws.yaml"),
        raw=manifest("stepfunctions", 2).encode(),
        cli_vars={"region": "eu-west-1", "account_id": "123456789012"},
    )
    aws = StepFunctionsBackend(aws_loaded.backends["aws"], Scope("aws", "rel", "prod"))
    client = aws.aws.client("stepfunctions")
    assert client._endpoint.http_session._verify not in (False, None, "")  # True, or a CA bundle's path
    assert aws.warnings() == ()
    trial.check("Step Functions: boto3 verifies TLS by default")


def test_a_kubeconfig_that_skips_verification_needs_the_backend_to_say_so(
    tmp_path: Path, k8s: Any, trial: Recorder
) -> None:
    trial.family, trial.backend = "transport security", "argo"
    config = kubeconfig_dict(k8s.server.url, k8s.token)
    config["clusters"][0]["cluster"]["insecure-skip-tls-verify"] = True
    kubeconfig = tmp_path / "insecure-kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    refused, text = _flowplan(["plan", "-f", str(_argo_manifest(tmp_path, kubeconfig))], debug=False)
    assert refused == 1
    assert "turns TLS verification off (insecure-skip-tls-verify: true)" in text
    assert "verify_tls: false" in text
    allowed, text = _flowplan(
        ["plan", "-f", str(_argo_manifest(tmp_path, kubeconfig, verify=False)), "--format", "json"], debug=False
    )
    assert allowed == 0, text
    plan = json.loads(text[: text.rindex("}") + 1])
    assert any("verify_tls is false" in w for w in plan["warnings"]), plan["warnings"]
    trial.check("Argo: verification off only with verify_tls: false on the backend; the plan warns")


def test_step_functions_without_verification_is_warned_about(tmp_path: Path, aws: Any, trial: Recorder) -> None:
    trial.family, trial.backend = "transport security", "stepfunctions"
    code, text = _flowplan(["plan", *_aws_manifest(tmp_path, aws, verify=False), "--format", "json"], debug=False)
    assert code == 0, text
    plan = json.loads(text[: text.rindex("}") + 1])
    assert any("verify_tls is false" in w for w in plan["warnings"]), plan["warnings"]
    code, text = _flowplan(["plan", *_aws_manifest(tmp_path, aws)], debug=False)
    assert code == 0 and "verify_tls" not in text
    trial.check("Step Functions: verify_tls: false shows in the plan's warnings")


# --------------------------------------------------------------------------- credentials in outputs


def _with_sensitive_var(path: Path) -> None:
    text = path.read_text().replace("vars:\n", "vars:\n  api_key: {sensitive: true}\n", 1)
    text = text.replace(
        "      start: {command: [echo, 'n0'], next: end,",
        "      start: {command: [echo, 'n0'], env: {API_KEY: {value: '{{ vars.api_key }}', sensitive: true}}, "
        "next: end,",
        1,
    )
    path.write_text(text)


@pytest.mark.slow
def test_no_token_in_any_output_of_the_argo_backend(tmp_path: Path, k8s: Any, trial: Recorder) -> None:
    trial.family, trial.backend = "transport security (secrets)", "argo"
    k8s.server.add_token(TOKEN)
    good = write_kubeconfig(tmp_path / "good", k8s.server.url, TOKEN)
    bad = write_kubeconfig(tmp_path / "bad", k8s.server.url, BAD_TOKEN)
    down = write_kubeconfig(tmp_path / "down", "http://127.0.0.1:9", TOKEN)
    garbling = start_proxy(k8s.server.url)
    garbling.rules.append(FaultRule(Respond(200, b"{not json " + TOKEN.encode()), key="list cronworkflows"))
    garbled = write_kubeconfig(tmp_path / "garbled", garbling.url, TOKEN)
    runs = 0
    try:
        for name, kubeconfig, expect in (
            ("apply", good, 0),
            ("401", bad, 1),
            ("unreachable", down, 1),
            ("garbled answer", garbled, 1),
        ):
            path = _argo_manifest(tmp_path, kubeconfig)
            _with_sensitive_var(path)
            for debug in (False, True):
                for command in (["plan"], ["apply", "--auto-approve"]):
                    code, text = _flowplan([*command, "-f", str(path), "--var", f"api_key={SENSITIVE}"], debug=debug)
                    runs += 1
                    assert code == expect or (expect == 0 and code == 0), (name, command, text[-2000:])
                    if debug and expect == 1:
                        assert "Traceback" in text, (name, text[-2000:])
                    _assert_clean(text, f"{name} {command} debug={debug}")
    finally:
        garbling.stop()
    trial.size = {"runs": runs}
    trial.check("no bearer token or sensitive value in stdout, stderr or logs (ok, 401, down, garbled; --debug)")


@pytest.mark.slow
def test_no_aws_key_in_any_output_of_the_step_functions_backend(
    tmp_path: Path, aws: Any, trial: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    trial.family, trial.backend = "transport security (secrets)", "stepfunctions"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    args = _aws_manifest(tmp_path, aws)
    _with_sensitive_var(Path(args[1]))
    args += ["--var", f"api_key={SENSITIVE}"]
    runs = 0

    def check(label: str, expect: int) -> None:
        nonlocal runs
        for debug in (False, True):
            for command in (["plan"], ["apply", "--auto-approve"]):
                code, text = _flowplan([*command, *args], debug=debug)
                runs += 1
                assert code == expect, (label, command, text[-2000:])
                if debug and expect == 1:
                    assert "Traceback" in text, (label, text[-2000:])
                _assert_clean(text, f"{label} {command} debug={debug}")

    check("apply", 0)
    aws.proxy.rules.append(FaultRule(Respond.aws_json(403, "AccessDeniedException", "not you"), key="tag:GetResources"))
    check("access denied", 1)
    # (a garbled 200 is read as an empty listing by botocore, and flowplan then describes what it wants: no error)
    aws.proxy.rules[:] = [FaultRule(Respond(502, b"<<garbage " + ACCESS_KEY.encode()), key="tag:GetResources")]
    check("garbled answer", 1)
    aws.proxy.rules.clear()
    down = tmp_path / "down.vars.yaml"
    down.write_text('region: eu-west-1\naccount_id: "123456789012"\nendpoint_url: "http://127.0.0.1:9"\n')
    args[3] = str(down)
    check("unreachable", 1)
    trial.size = {"runs": runs}
    trial.check("no AWS key, session token or sensitive value in stdout, stderr or logs (ok, 403, down, garbled)")
