"""Fixtures of the reliability trials: one target per backend, and the trial recorder.

``target`` is parametrized over the three backends (``files``, ``argo``,
``stepfunctions``); ``live_target`` over the two that talk HTTP. Each gives a
fresh backend (files: an empty directory; argo: the reset Kubernetes API test
server behind the session's counting proxy; stepfunctions: reset moto behind
its proxy) and an environment where flowplan run in this process reaches it.

``trial`` is a :class:`~tests.reliability.harness.Recorder` a test fills in;
when ``FLOWPLAN_RELIABILITY_RESULTS`` names a file, one JSON line per trial is
appended to it at teardown, with the test's outcome — what
``tests/reliability/report.py`` turns into docs/reliability.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.argo import client as argo_client
from planner.cli import session as cli_session
from tests.reliability.harness import (
    ArgoTarget,
    FilesTarget,
    Recorder,
    StepFunctionsTarget,
    Target,
    reset_target,
)

RESULTS_ENV = "FLOWPLAN_RELIABILITY_RESULTS"
#: The client read timeout the fault trials use, and how long a ``timeout`` fault holds a request.
CLIENT_READ_TIMEOUT = 2.5
FAULT_DELAY = 3.0


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" or (report.when == "setup" and report.failed):
        item.stash[_OUTCOME] = report.outcome
    return report


_OUTCOME = pytest.StashKey[str]()


@pytest.fixture
def trial(request: pytest.FixtureRequest) -> Iterator[Recorder]:
    recorder = Recorder(family="?", backend="?")
    yield recorder
    path = os.environ.get(RESULTS_ENV)
    if not path or recorder.family == "?":
        return
    outcome = request.node.stash.get(_OUTCOME, "failed")
    line = {
        "test": request.node.nodeid,
        "outcome": outcome,
        "family": recorder.family,
        "backend": recorder.backend,
        "size": recorder.size,
        "faults": recorder.faults,
        "retries": recorder.retries,
        "checked": recorder.checked,
        "notes": recorder.notes,
        "extra": recorder.extra,
    }
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line, sort_keys=True) + "\n")


@pytest.fixture
def client_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short client read timeouts for flowplan run in this process (a ``timeout`` fault outlasts them)."""
    original = cli_session.open_backend

    def opened(spec: Any, options: Any) -> Any:
        extra = dict(options.extra)
        if spec.type == "argo":
            extra.setdefault("timeout", (2.0, CLIENT_READ_TIMEOUT))
        elif spec.type == "stepfunctions":
            extra.setdefault("read_timeout", CLIENT_READ_TIMEOUT)
            extra.setdefault("connect_timeout", 2.0)
        return original(spec, type(options)(options.manifest_dir, options.scope, options.provenance, extra))

    monkeypatch.setattr(cli_session, "open_backend", opened)


def _files(tmp_path: Path) -> FilesTarget:
    return FilesTarget(tmp_path / "files")


def _argo(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ArgoTarget:
    server = request.getfixturevalue("k8s_server")
    proxy = request.getfixturevalue("_k8s_session_proxy")
    target = ArgoTarget(tmp_path / "argo", server, proxy)
    monkeypatch.setenv("KUBECONFIG", str(target.kubeconfig))
    return target


def _aws(request: pytest.FixtureRequest, tmp_path: Path) -> StepFunctionsTarget:
    aws = request.getfixturevalue("aws")
    return StepFunctionsTarget(tmp_path / "aws", aws)


def make_target(kind: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Target:
    monkeypatch.setenv("FLOWPLAN_LOCK_HOLDER", "reliability")
    monkeypatch.chdir(tmp_path)
    if kind == "files":
        target: Target = _files(tmp_path)
    elif kind == "argo":
        target = _argo(request, tmp_path, monkeypatch)
    else:
        target = _aws(request, tmp_path)
    reset_target(target)
    return target


@pytest.fixture(params=["files", "argo", "stepfunctions"])
def target(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    made = make_target(request.param, request, tmp_path, monkeypatch)
    yield made
    proxy = getattr(made, "proxy", None)
    if proxy is not None:
        proxy.rules.clear()


@pytest.fixture
def files_target(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Target:
    return make_target("files", request, tmp_path, monkeypatch)


@pytest.fixture
def argo_target(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    made = make_target("argo", request, tmp_path, monkeypatch)
    yield made
    made.proxy.rules.clear()  # type: ignore[attr-defined]


@pytest.fixture(params=["argo", "stepfunctions"])
def live_target(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    made = make_target(request.param, request, tmp_path, monkeypatch)
    yield made
    proxy = getattr(made, "proxy", None)
    if proxy is not None:
        proxy.rules.clear()


@pytest.fixture
def fast_argo_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(argo_client, "DEFAULT_RETRY", argo_client.FAST_RETRY)
