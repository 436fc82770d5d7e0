"""Fixtures of the operate tests: the Argo example on the Kubernetes API test server, a small manifest on moto."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.backends.argo.test_live_support import cluster
from tests.backends.stepfunctions.helpers import TINY, Workspace
from tests.support.aws_fixtures import AwsEnv

__all__ = ["cluster", "tiny"]


@pytest.fixture
def tiny(aws: AwsEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """Two flows (``up`` on a schedule, ``down`` after it; 8 resources) aimed at moto through the proxy.

    moto simulates how executions end through ``SF_EXECUTION_HISTORY_TYPE`` (read when an execution
    starts): unset, an execution stays RUNNING with a history that ends in ExecutionSucceeded;
    ``FAILURE`` makes it FAILED.
    """
    monkeypatch.delenv("SF_EXECUTION_HISTORY_TYPE", raising=False)
    return Workspace(tmp_path, aws, TINY)
