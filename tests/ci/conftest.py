"""The GitHub API stand-in for the CI tests, and the GitHub Actions variables that point at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.github_server import GitHubServer

TOKEN = "ghs_test-token-that-must-never-be-printed"


@pytest.fixture
def github_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubServer]:
    """A fresh server on 127.0.0.1:0, with the variables a GitHub Actions step would see."""
    server = GitHubServer(token=TOKEN, repository="acme/recsys").start()
    for name, value in {
        "GITHUB_API_URL": server.url,
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_REPOSITORY": "acme/recsys",
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_RUN_ID": "777",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GITHUB_EVENT_PATH", raising=False)
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    try:
        yield server
    finally:
        server.stop()
