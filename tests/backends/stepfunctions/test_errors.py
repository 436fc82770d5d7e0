"""Errors a person can act on: one paragraph with a hint, exit 1, never a traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.backends.stepfunctions.helpers import TINY, Workspace
from tests.support.aws_fixtures import AwsEnv
from tests.support.proxy import FaultRule, Respond


def _assert_one_paragraph(text: str) -> None:
    assert "Traceback" not in text
    assert text.startswith("Error: ")


def test_missing_credentials(tiny: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = tiny.run("plan")
    assert result.code == 1
    _assert_one_paragraph(result.err)
    assert "no AWS credentials found for backend 'aws' in eu-west-1" in result.err
    assert "aws sso login" in result.err


def test_an_unknown_profile(aws: AwsEnv, tmp_path: Path) -> None:
    text = TINY.replace("    endpoint_url:", "    profile: nobody\n    endpoint_url:")
    result = Workspace(tmp_path, aws, text).run("plan")
    assert result.code == 1
    _assert_one_paragraph(result.err)
    assert "the AWS profile 'nobody'" in result.err


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ExpiredTokenException", "have expired"),
        ("UnrecognizedClientException", "AWS rejected the credentials"),
    ],
)
def test_expired_or_rejected_credentials(tiny: Workspace, aws: AwsEnv, code: str, expected: str) -> None:
    aws.proxy.rules.append(FaultRule(Respond.aws_json(400, code, "The security token is invalid")))
    result = tiny.run("plan")
    assert result.code == 1
    _assert_one_paragraph(result.err)
    assert expected in result.err


def test_access_denied_names_the_action_and_the_resource(tiny: Workspace, aws: AwsEnv) -> None:
    assert tiny.apply().code == 0
    message = (
        "User: arn:aws:sts::123456789012:assumed-role/ci/deploy is not authorized to perform: "
        "states:DescribeStateMachine"
    )
    aws.proxy.rules.append(
        FaultRule(Respond.aws_json(400, "AccessDeniedException", message), key="states:DescribeStateMachine")
    )
    result = tiny.run("plan")
    assert result.code == 1
    _assert_one_paragraph(result.err)
    assert (
        "AWS denied states:DescribeStateMachine on arn:aws:states:eu-west-1:123456789012:stateMachine:tiny-prod-"
        in (result.err)
    )
    assert "allow states:DescribeStateMachine" in result.err and "README.md" in result.err


def test_an_unreachable_endpoint(aws: AwsEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    result = Workspace(tmp_path, aws, TINY, endpoint_url=f"http://127.0.0.1:{port}").run("plan")
    assert result.code == 1
    _assert_one_paragraph(result.err)
    assert "cannot reach AWS for backend 'aws' in eu-west-1" in result.err
    assert "endpoint_url" in result.err


def test_throttling_that_outlives_its_retries(tiny: Workspace, aws: AwsEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    aws.proxy.rules.append(FaultRule(Respond.aws_json(400, "ThrottlingException", "Rate exceeded"), key="tag:*"))
    result = tiny.run("plan")
    assert result.code == 1
    _assert_one_paragraph(result.err)
    assert "tag:GetResources" in result.err and "still failed after retries" in result.err
    assert aws.proxy.counts()["tag:GetResources"] == 2  # retried (with backoff) once, as configured


def test_turning_tls_verification_off_is_said_on_every_plan(
    aws: AwsEnv, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = TINY.replace("    endpoint_url:", "    verify_tls: false\n    endpoint_url:")
    result = Workspace(tmp_path, aws, text).run("plan")
    assert result.code == 0, result.text
    assert "[TLS NOT VERIFIED]" in result.out
    # A logging warning: stderr in the CLI (Python's last-resort handler), captured here by pytest.
    assert "does not verify the endpoint's TLS certificate (verify_tls: false)" in caplog.text
