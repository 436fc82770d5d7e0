"""Pytest fixtures for moto's server and the counting proxy in front of it.

Imported by tests/conftest.py (``from tests.support.aws_fixtures import *``).

* ``moto_server`` (session): one :class:`~tests.support.moto_server.MotoServer`.
* ``aws`` (function): an :class:`AwsEnv`: moto reset, a counting proxy in front
  (counts and fault rules empty), fake credentials in the environment (and no
  profile, config file or instance metadata that could leak in), and helpers:
  ``client(service)`` talks to moto *directly* (test setup and inspection are
  never counted), ``url`` is the proxy's (what flowplan is pointed at).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.moto_server import ACCOUNT_ID, MotoServer, start_moto_server
from tests.support.proxy import CountingProxy, start_proxy

__all__ = ["ACCOUNT_ID", "REGION", "AwsEnv", "_moto_session_proxy", "aws", "moto_server"]

REGION = "eu-west-1"
WRITE_PREFIXES = (
    "Create",
    "Update",
    "Delete",
    "Put",
    "Register",
    "Deregister",
    "Tag",
    "Untag",
    "Remove",
    "Add",
    "Publish",
    "Start",
    "Stop",
)


@dataclass
class AwsEnv:
    """moto (reset) behind a counting proxy, with credentials in the environment."""

    server: MotoServer
    proxy: CountingProxy
    region: str = REGION
    account: str = ACCOUNT_ID

    @property
    def url(self) -> str:
        """Where flowplan talks to: the proxy."""
        return self.proxy.url

    def client(self, service: str) -> Any:
        """A boto3 client straight to moto (not counted by the proxy)."""
        import boto3

        return boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=self.region
        ).client(service, endpoint_url=self.server.url)

    def writes(self) -> dict[str, int]:
        """Calls through the proxy that change something, by ``service:Operation``."""
        return {k: v for k, v in self.proxy.counts().items() if _is_write(k)}


def _is_write(key: str) -> bool:
    operation = key.partition(":")[2]
    return operation.startswith(WRITE_PREFIXES)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto server per session (per xdist worker)."""
    server = start_moto_server()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _moto_session_proxy(moto_server: MotoServer) -> Iterator[CountingProxy]:
    proxy = start_proxy(moto_server.url)
    yield proxy
    proxy.stop()


@pytest.fixture
def aws(
    moto_server: MotoServer, _moto_session_proxy: CountingProxy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[AwsEnv]:
    """A reset moto behind a reset counting proxy, and an environment holding only fake credentials."""
    moto_server.reset()
    proxy = _moto_session_proxy
    proxy.rules.clear()
    proxy.reset_counts()
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_MAX_ATTEMPTS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # moto reads back what it just wrote at once; AWS may need a moment (the default is 0.5 s).
    monkeypatch.setenv("FLOWPLAN_AWS_READBACK_DELAY", "0.05")
    yield AwsEnv(server=moto_server, proxy=proxy)
    proxy.rules.clear()
