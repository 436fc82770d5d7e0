"""The apply lock as a Lease: taken, renewed, released, expired and taken over, forced; races decided by the server."""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import socket
import threading
import time
from dataclasses import replace
from typing import Any

from backends.argo.lock import LOCK_ANNOTATION, lock_name
from planner.contract import LockInfo, Scope
from planner.errors import LockError
from tests.backends.argo.test_live_support import NAMESPACE, Cluster, cluster
from tests.support.kubeconfig import write_kubeconfig
from tests.support.proxy import Delay, FaultRule, start_proxy

__all__ = ["cluster"]

SCOPE = Scope("cluster", "recsys", "prod")
LEASE = lock_name(SCOPE)


def _info(holder: str, pid: int = 4242, ttl: float = 300.0) -> LockInfo:
    now = time.time()
    return LockInfo(holder, "host-" + holder, pid, "apply", now, now + ttl)


def test_a_lease_is_taken_renewed_and_released(cluster: Cluster) -> None:
    lock = cluster.backend().lock(SCOPE)
    assert lock.current() is None
    alice = _info("alice")
    lock.acquire(alice)
    lease = cluster.server.get_object("Lease", NAMESPACE, LEASE)
    assert lease is not None
    assert lease["spec"]["holderIdentity"] == "alice@host-alice pid 4242"
    assert lease["spec"]["leaseDurationSeconds"] in (299, 300)
    assert LOCK_ANNOTATION in lease["metadata"]["annotations"]
    held = lock.current()
    assert held is not None and (held.holder, held.host, held.pid) == ("alice", "host-alice", 4242)
    assert not held.expired

    time.sleep(0.01)
    lock.renew(replace(alice, expires_at=time.time() + 300))
    renewed = cluster.server.get_object("Lease", NAMESPACE, LEASE)
    assert renewed is not None and renewed["spec"]["renewTime"] > lease["spec"]["renewTime"]

    lock.release(alice)
    assert cluster.server.get_object("Lease", NAMESPACE, LEASE) is None


def test_a_held_lease_names_its_holder_and_an_expired_one_is_taken_over(cluster: Cluster) -> None:
    backend = cluster.backend()
    backend.lock(SCOPE).acquire(_info("alice", ttl=1.0))
    try:
        backend.lock(SCOPE).acquire(_info("bob", pid=7))
    except LockError as exc:
        assert "held by alice on host host-alice (pid 4242" in exc.message
        assert "force-unlock" in (exc.hint or "")
    else:
        raise AssertionError("bob took a held lock")
    lease = cluster.server.get_object("Lease", NAMESPACE, LEASE)
    assert lease is not None
    lease["spec"]["renewTime"] = "2020-01-01T00:00:00.000000Z"  # alice died long ago
    cluster.server.put_object(lease)
    bob = _info("bob", pid=7)
    backend.lock(SCOPE).acquire(bob)
    taken = cluster.server.get_object("Lease", NAMESPACE, LEASE)
    assert taken is not None
    assert taken["spec"]["holderIdentity"] == "bob@host-bob pid 7"
    assert taken["spec"]["leaseTransitions"] == 1


def test_renewing_a_lost_lease_is_an_error_and_releasing_it_leaves_the_new_holder_alone(cluster: Cluster) -> None:
    backend = cluster.backend()
    alice_lock = backend.lock(SCOPE)
    alice = _info("alice")
    alice_lock.acquire(alice)
    forced = backend.lock(SCOPE).force_unlock()
    assert forced is not None and forced.holder == "alice"
    backend.lock(SCOPE).acquire(_info("bob"))
    try:
        alice_lock.renew(alice)
    except LockError as exc:
        assert "was lost: it is now held by bob" in exc.message
    else:
        raise AssertionError("renewing a lost lease succeeded")
    alice_lock.release(alice)
    current = backend.lock(SCOPE).current()
    assert current is not None and current.holder == "bob"


def test_racing_acquires_have_exactly_one_winner(cluster: Cluster) -> None:
    backend = cluster.backend()
    for round_ in range(5):
        cluster.server.delete_object("Lease", NAMESPACE, LEASE)
        contenders = [_info(f"c{i}", pid=i) for i in range(5)]
        barrier = threading.Barrier(len(contenders))
        winners: list[str] = []
        losers: list[str] = []

        def contend(
            info: LockInfo,
            barrier: threading.Barrier = barrier,
            winners: list[str] = winners,
            losers: list[str] = losers,
        ) -> None:
            lock = backend.lock(SCOPE)
            barrier.wait()
            try:
                lock.acquire(info)
                winners.append(info.holder)
            except LockError as exc:
                losers.append(exc.message)

        threads = [threading.Thread(target=contend, args=(c,)) for c in contenders]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert len(winners) == 1, (round_, winners, losers)
        assert all(f"held by {winners[0]} on host host-{winners[0]}" in m for m in losers), losers


def test_force_unlock_through_the_cli(cluster: Cluster) -> None:
    cluster.backend().lock(SCOPE).acquire(_info("ghost", pid=99))
    result = cluster.flowplan("force-unlock", "--yes")
    assert result.code == 0, result.text
    assert "locked by ghost on host host-ghost (pid 99" in result.err
    assert cluster.server.get_object("Lease", NAMESPACE, LEASE) is None
    assert "no locks held" in cluster.flowplan("force-unlock", "--yes").err


# --------------------------------------------------------------------------- two applies, two processes


def _apply_process(manifest: str, kubeconfig: str, holder: str, barrier: Any, results: Any) -> None:
    os.environ["KUBECONFIG"] = kubeconfig
    os.environ["FLOWPLAN_LOCK_HOLDER"] = holder
    os.environ["FLOWPLAN_GIT_COMMIT"] = "0" * 40
    os.environ["NO_COLOR"] = "1"
    import kubernetes.client.api.core_v1_api  # noqa: F401 - pay the client's import before the race starts

    from planner.cli import run

    out, err = io.StringIO(), io.StringIO()
    barrier.wait(timeout=60)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        args = ["--var", f"namespace={NAMESPACE}", "--var", f"sensor_namespace={NAMESPACE}"]
        code = run(["apply", "-f", manifest, "--auto-approve", *args])
    results.put((holder, os.getpid(), code, out.getvalue(), err.getvalue()))


def test_two_applies_started_together_one_proceeds_the_other_exits_naming_the_holder(cluster: Cluster) -> None:
    """Each process talks through its own counting proxy, so what the loser sent is known exactly."""
    proxies = [start_proxy(cluster.server.url) for _ in range(2)]
    try:
        for proxy in proxies:  # hold the lock long enough that the loser's attempt meets it
            proxy.rules.append(FaultRule(Delay(1.0), key="create workflowtemplates"))
        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(2)
        results = ctx.Queue()
        procs = []
        for i, proxy in enumerate(proxies):
            kubeconfig = write_kubeconfig(cluster.workdir / f"kc-{i}", proxy.url, cluster.server.admin_token)
            args = (str(cluster.manifest), str(kubeconfig), f"runner-{i}", barrier, results)
            procs.append(ctx.Process(target=_apply_process, args=args))
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=30)
    finally:
        for proxy in proxies:
            proxy.stop()
    by_code = {code: (holder, pid, out, err) for holder, pid, code, out, err in outcomes}
    assert sorted(by_code) == [0, 1], outcomes
    winner, winner_pid, _, _ = by_code[0]
    loser, _, _, loser_err = by_code[1]
    assert f"held by {winner} on host {socket.gethostname()} (pid {winner_pid}, apply since" in loser_err
    loser_proxy = proxies[int(loser.rsplit("-", 1)[1])]
    loser_writes = {
        k: v for k, v in loser_proxy.counts().items() if k.split(" ")[0] in ("create", "update", "patch", "delete")
    }
    assert set(loser_writes) <= {"create leases"}, loser_writes  # at most its lost attempt at the lease
    assert len(cluster.objects("WorkflowTemplate")) == 4
    assert cluster.server.get_object("Lease", NAMESPACE, LEASE) is None  # the winner released it
