"""Shared fixtures: the Kubernetes API test server and counting proxy (tests/support/fixtures.py),
moto's server for AWS (tests/support/aws_fixtures.py), and small helpers for CLI tests."""

from __future__ import annotations

import contextlib
import os

import pytest

from tests.support.fixtures import *  # noqa: F403

with contextlib.suppress(ImportError):  # until the Step Functions backend lands
    from tests.support.aws_fixtures import *  # noqa: F403


@pytest.fixture(autouse=True)
def _stable_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Provenance and colours must not depend on the machine the tests run on."""
    monkeypatch.setenv("FLOWPLAN_GIT_COMMIT", "0" * 40)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    monkeypatch.delenv("FLOWPLAN_DEBUG", raising=False)
    os.environ.pop("CI_COMMIT_SHA", None)
    # The test manifests name their own kubeconfig and endpoint (the operator's opt-in; its default is tested
    # in tests/security).
    monkeypatch.setenv("FLOWPLAN_ALLOW_MANIFEST_CONNECTION", "1")
