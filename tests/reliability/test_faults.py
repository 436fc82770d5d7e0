"""Fault injection: with a tenth of the calls failing at random, applies of hundreds of resources converge.

The counting proxy fails a seeded 10% of the calls between flowplan and the
server (:class:`~tests.support.proxy.RandomFaults`), drawing evenly from five
fault types: a 5xx answer, a 429 (AWS: ThrottlingException), a delay past the
client's read timeout (the server still applies the call after the client
gave up), a connection reset before forwarding, and a reset after the server
applied the call (the ambiguous commit). The files backend has no network:
there a tenth of the file writes fail with EIO, before or after the bytes
reached the disk.

Each trial applies a generated manifest to an empty backend, then a second
version of it (creates, updates and deletes), each time rerunning ``apply``
under faults until it exits 0 (a call that outlives its retries stops only
its resource and dependents: the run exits 1 and the next one converges).
Then, without faults: the plan is empty, what is live is exactly what is
desired (nothing lost, no orphans, no duplicates — Batch job definition
revisions, rule targets and aliases included), the inventory lists exactly
it. Retries are counted by the proxy (the same request seen again after a
fault): bounded per request, spread by backoff with jitter.

A second test pins one resource's calls to fail every time: the apply stops
exactly that resource and what depends on it, and a rerun converges.
"""

from __future__ import annotations

import errno
import random
import statistics
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backends import files as files_backend
from backends.argo import client as argo_client
from planner.resources import Address
from tests.reliability.conftest import CLIENT_READ_TIMEOUT, FAULT_DELAY
from tests.reliability.harness import (
    ArgoTarget,
    FilesTarget,
    Recorder,
    StepFunctionsTarget,
    Target,
    WriteLog,
    flows_for,
    scale,
)
from tests.support.proxy import FAULT_TYPES, RandomFaults, Respond

pytestmark = pytest.mark.usefixtures("client_timeouts")

SCALE = scale()
#: Applies allowed per manifest version before a trial counts as not converging.
MAX_RUNS = 6


class FileFaults:
    """Seeded EIO on a fraction of the files backend's writes, before or after the bytes land."""

    def __init__(self, seed: int, rate: float) -> None:
        self.rng = random.Random(seed)
        self.rate = rate
        self.injected: Counter[str] = Counter()
        self.calls = 0
        self.lock = threading.Lock()

    def wrap(self, write: Callable[..., None]) -> Callable[..., None]:
        """Wrap ``backends.files._write_bytes`` (below the backend's own error translation)."""

        def faulty(path: Path, data: bytes, **kwargs: Any) -> None:
            with self.lock:
                self.calls += 1
                draw = self.rng.random()
                kind = self.rng.choice(("eio-before", "eio-after"))
            if draw < self.rate and kind == "eio-before":
                self.injected["eio-before"] += 1
                raise OSError(errno.EIO, "injected I/O error", str(path))
            write(path, data, **kwargs)
            if draw < self.rate:
                self.injected["eio-after"] += 1
                raise OSError(errno.EIO, "injected I/O error after the write", str(path))

        return faulty


def _converge(target: Target, recorder: Recorder, label: str) -> list[int]:
    """Apply until exit 0 (at most MAX_RUNS times); the exit codes of every run."""
    codes = []
    for _ in range(MAX_RUNS):
        result = target.apply()
        codes.append(result.code)
        proxy = getattr(target, "proxy", None)
        if proxy is not None:
            proxy.close_chains()
        if result.code == 0:
            break
        assert "Traceback" not in result.text, result.text
        reasons = [line.strip() for line in result.err.splitlines() if line.strip().startswith(("failed", "Error"))]
        recorder.extra.setdefault("failures", []).extend(reasons[:8])
    recorder.notes.append(f"{label}: exit codes {codes}")
    assert codes[-1] == 0, f"{label}: no convergence in {MAX_RUNS} runs"
    return codes


def _retry_figures(target: Target, recorder: Recorder) -> None:
    proxy = target.proxy  # type: ignore[attr-defined]
    retries = sum(proxy.retries().values())
    chains = proxy.retry_chains()
    gaps = proxy.retry_gaps()
    recorder.retries += retries
    recorder.extra["max_attempts_seen"] = max([1, *chains])
    by_attempt: dict[int, list[float]] = {}
    for attempt, gap in gaps:
        by_attempt.setdefault(attempt, []).append(gap)
    recorder.extra["retry_gap_median_s"] = {
        str(a): round(statistics.median(v), 3) for a, v in sorted(by_attempt.items()) if v
    }
    assert retries > 0, "faults were injected but no request was retried"
    # Bounded: Argo's policy tries a call 5 times; botocore's standard mode 3 times, and a non-idempotent
    # AWS create is sent at most 3 times (each after a read-back proved the earlier one never landed).
    bound = 5 if isinstance(target, ArgoTarget) else 9
    assert max(chains) <= bound, f"a request was tried {max(chains)} times (bound {bound})"
    # Jitter: retries after the same number of faults do not wait the same time.
    first = by_attempt.get(2, [])
    if len(first) >= 5:
        assert len({round(g, 3) for g in first}) > len(first) // 2, f"retry gaps look fixed: {first[:10]}"
    recorder.check("retries bounded with backoff and jitter (proxy)")


@pytest.mark.slow
@pytest.mark.parametrize("seed", SCALE.fault_seeds)
def test_random_faults_converge(target: Target, seed: int, trial: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    trial.family, trial.backend = "fault injection", target.kind
    flows = flows_for(target.kind, SCALE.fault_resources)
    target.write(flows)
    desired = len(target.desired())
    trial.size = {"resources": desired, "flows": flows, "seed": seed, "rate": SCALE.fault_rate}
    if isinstance(target, FilesTarget):
        faults = FileFaults(seed, SCALE.fault_rate)
        monkeypatch.setattr(files_backend, "_write_bytes", faults.wrap(files_backend._write_bytes))
    else:
        proxy = target.proxy  # type: ignore[attr-defined]
        log = WriteLog()
        flavor = "aws" if isinstance(target, StepFunctionsTarget) else "kubernetes"
        rule = RandomFaults(seed, SCALE.fault_rate, flavor, timeout=FAULT_DELAY)
        proxy.rules[:] = [log, rule]
        if isinstance(target, ArgoTarget):
            monkeypatch.setattr(argo_client, "DEFAULT_RETRY", argo_client.DEFAULT_RETRY)

    first = _converge(target, trial, f"{desired} creates")
    target.write(flows, variant=1)
    second = _converge(target, trial, "second version (creates, updates, deletes)")

    if isinstance(target, FilesTarget):
        monkeypatch.undo()
        trial.add_faults(faults.injected)
        trial.size["file writes"] = faults.calls
        assert sum(faults.injected.values()) > 0
    else:
        proxy.rules.clear()
        trial.add_faults(proxy.fault_types())
        trial.size["calls"] = proxy.total()
        trial.extra["writes"] = log.snapshot()
        assert sum(proxy.fault_types().values()) > 0
        if SCALE.name == "full":
            assert set(proxy.fault_types()) == set(FAULT_TYPES), proxy.fault_types()
        _retry_figures(target, trial)
        trial.extra["client_read_timeout_s"] = CLIENT_READ_TIMEOUT
    trial.extra["runs"] = [len(first), len(second)]
    # A call held past the client's timeout may land after its apply ended (a RegisterJobDefinition sent again
    # meanwhile makes a second revision): only a later run can see that. One clean rerun settles it.
    settle = target.apply()
    assert settle.code == 0, settle.text
    done = settle.out.rsplit("Apply complete:", 1)[-1] if "Apply complete:" in settle.out else ""
    trial.extra["changes made by the settling rerun"] = sum(int(w) for w in done.split() if w.isdigit())
    problems = target.converged()
    assert problems == [], problems
    trial.check("plan empty after convergence")
    trial.check("nothing lost, no orphans, no duplicates (revisions, targets, aliases)")
    trial.check("inventory equals live")


# --------------------------------------------------------------------------- a call that never succeeds


def _victim(target: Target) -> tuple[Address, set[Address]]:
    """A resource with dependents, and those dependents (from the plan's own dependency graph)."""
    from planner.building import build_plan
    from planner.cli.session import ManifestOptions, load

    options = ManifestOptions(str(target.manifest_path), tuple(target.cli_vars().items()), tuple(target.var_files()))
    session = load(options)
    result = build_plan(session.manifest, session.backends, session.provenance)
    assert result.order is not None
    kind = "StateMachine" if isinstance(target, StepFunctionsTarget) else "WorkflowTemplate"
    candidates = sorted(
        (c.address for c in result.plan.changes if c.address.kind == kind and result.order.dependents(c.address)),
        key=lambda a: a.sort_key(),
    )
    victim = candidates[1]
    return victim, set(result.order.dependents(victim))


@pytest.mark.slow
def test_a_call_that_always_fails_stops_only_its_resource_and_dependents(
    target: Target, trial: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    trial.family, trial.backend = "fault injection (persistent)", target.kind
    target.write(6)
    victim, dependents = _victim(target)
    desired = target.desired()
    trial.size = {"resources": len(desired), "persistent faults": 1}
    if isinstance(target, FilesTarget):
        original = files_backend._write_bytes
        victim_file = files_backend.relative_path(victim)
        hits = Counter[str]()

        def failing(path: Path, data: bytes, **kwargs: Any) -> None:
            if path.as_posix().endswith(victim_file.as_posix()):
                hits["eio"] += 1
                raise OSError(errno.EIO, "injected I/O error", str(path))
            original(path, data, **kwargs)

        monkeypatch.setattr(files_backend, "_write_bytes", failing)
    else:
        proxy = target.proxy  # type: ignore[attr-defined]
        if isinstance(target, StepFunctionsTarget):
            action = Respond.aws_json(500, "InternalFailure", "injected: always")
            proxy.rules[:] = [_only_for(victim.name, action, "states:CreateStateMachine")]
        else:
            action = Respond.kubernetes(503, "ServiceUnavailable", "injected: always")
            proxy.rules[:] = [_only_for(victim.name, action, "create workflowtemplates")]
    failed = target.apply()
    assert failed.code == 1, failed.text
    assert "Traceback" not in failed.text
    failed_lines = {
        line.split()[1].rstrip(":") for line in failed.err.splitlines() if line.strip().startswith("failed")
    }
    skipped_lines = {line.split()[1] for line in failed.err.splitlines() if line.strip().startswith("skipped")}
    assert failed_lines == {str(victim)}, failed.err
    assert skipped_lines == {str(d) for d in dependents}, failed.err
    live = set(target.live().owned)
    assert live == desired - {victim} - dependents, "independent resources were not all applied"
    trial.check("only the failing resource and its dependents stop")
    if isinstance(target, FilesTarget):
        monkeypatch.setattr(files_backend, "_write_bytes", original)
        trial.add_faults({"eio": hits["eio"]})
    else:
        trial.add_faults(proxy.fault_types())
        trial.retries += sum(proxy.retries().values())
        chains = proxy.retry_chains()
        trial.extra["attempts_of_the_failing_call"] = max([1, *chains])
        assert max(chains) <= (5 if isinstance(target, ArgoTarget) else 9)
        proxy.rules.clear()
    trial.extra["skipped_dependents"] = len(dependents)
    again = target.apply()
    assert again.code == 0, again.text
    assert target.converged() == []
    trial.check("a rerun converges")


def _only_for(name: str, action: Any, key: str) -> Callable[[Any], Any]:
    """A rule failing every ``key`` request that names ``name`` in its body."""

    def rule(request: Any) -> Any:
        return action if request.key == key and name.encode() in request.body else None

    return rule
