"""Fixtures of the Step Functions tests: a workspace with the example aimed at moto."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.backends.stepfunctions.helpers import TINY, Workspace
from tests.support.aws_fixtures import AwsEnv


@pytest.fixture
def example(aws: AwsEnv, tmp_path: Path) -> Workspace:
    """``examples/stepfunctions/flows.yaml`` in a tmp dir, its var file pointing at the proxy in front of moto."""
    return Workspace(tmp_path, aws)


@pytest.fixture
def tiny(aws: AwsEnv, tmp_path: Path) -> Workspace:
    """A two-flow manifest (every kind, 8 resources) aimed at moto; quicker to apply than the example."""
    return Workspace(tmp_path, aws, TINY)
