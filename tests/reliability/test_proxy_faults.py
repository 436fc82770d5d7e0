"""The counting proxy's fault injection: seeded random faults, per-type counters, retries observed, hooks."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from tests.support.fixtures import ProxyEnv
from tests.support.proxy import Delay, FaultRule, ForwardThenReset, RandomFaults, ResetBeforeForward, Respond


def _get(env: ProxyEnv, name: str) -> str:
    request = urllib.request.Request(
        f"{env.url}/api/v1/namespaces/ml/configmaps/{name}", headers={"Authorization": f"Bearer {env.k8s.token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return str(answer.status)
    except urllib.error.HTTPError as exc:
        return str(exc.code)
    except (urllib.error.URLError, ConnectionError, OSError) as exc:
        return type(exc).__name__


def _run(env: ProxyEnv, seed: int) -> tuple[list[str], dict[str, int], dict[str, int]]:
    env.proxy.reset_counts()
    rule = RandomFaults(seed, rate=0.5, timeout=0.01)
    env.proxy.rules[:] = [rule]
    outcomes = [_get(env, f"cm-{i}") for i in range(30)]
    env.proxy.rules.clear()
    return outcomes, dict(rule.injected), env.proxy.fault_types()


def test_random_faults_are_seeded_and_counted_by_type(k8s_proxy: ProxyEnv) -> None:
    first, second, other = _run(k8s_proxy, 7), _run(k8s_proxy, 7), _run(k8s_proxy, 8)
    assert first[0] == second[0] and first[1] == second[1], "the same seed injects the same faults"
    assert first[0] != other[0]
    assert 5 <= sum(first[1].values()) <= 25
    assert first[1] == first[2], "the rule's own count and the proxy's per-type counters agree"
    assert set(first[1]) <= {"5xx", "429", "timeout", "reset-before", "reset-after"}


def test_a_request_seen_again_after_a_fault_is_a_retry(k8s_proxy: ProxyEnv) -> None:
    proxy = k8s_proxy.proxy
    proxy.rules.append(FaultRule(Respond.kubernetes(503, "ServiceUnavailable"), key="get configmaps", times=2))
    assert [_get(k8s_proxy, "a") for _ in range(3)] == ["503", "503", "404"]
    assert _get(k8s_proxy, "a") == "404"  # answered before: a repeat, not a retry
    assert proxy.retries() == {"get configmaps": 2}
    assert proxy.retry_chains() == {2: 1, 3: 1}
    assert [attempt for attempt, _ in proxy.retry_gaps()] == [2, 3]
    assert proxy.fault_types() == {"5xx": 2}


def test_hooks_run_at_the_fault(k8s_proxy: ProxyEnv) -> None:
    calls: list[str] = []
    proxy = k8s_proxy.proxy
    proxy.rules.append(FaultRule(ResetBeforeForward(hook=lambda: calls.append("before")), path="/b$", times=1))
    proxy.rules.append(FaultRule(ForwardThenReset(hook=lambda: calls.append("after")), path="/c$", times=1))
    proxy.rules.append(FaultRule(Delay(0.01), path="/d$", times=1))
    outcomes: list[Any] = [_get(k8s_proxy, n) for n in ("b", "c", "d")]
    assert outcomes[2] == "404"
    assert calls == ["before", "after"]
    assert proxy.fault_types() == {"reset-before": 1, "reset-after": 1, "timeout": 1}
