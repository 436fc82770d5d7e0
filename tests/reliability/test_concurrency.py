"""Concurrency: applies started together behind a barrier; exactly one holds the lock, the others write nothing.

Two, then five ``flowplan apply`` processes plan the same manifest, then wait
at a barrier placed just before they take the lock, and are released at
once. Exactly one exits 0; every other exits 1 with the lock error naming the
winner (its holder name and pid). Each racer talks to the server through a
counting proxy of its own, so its calls are known exactly: the losers made
lock calls (counted apart) and not one resource or inventory write. On the
files backend each racer counts its own file writes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.reliability.harness import (
    ArgoTarget,
    FilesTarget,
    Recorder,
    StepFunctionsTarget,
    Target,
    WriteLog,
    scale,
)
from tests.support.proxy import CountingProxy, start_proxy

SCALE = scale()
FLOWS = 4

_CHILD = textwrap.dedent(
    """
    import json, os, sys, time, atexit
    from pathlib import Path
    barrier, me, files = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "files"
    counts = {"lock": 0, "inventory": 0, "resource": 0}
    if files:
        from backends import files as fb
        write, delete, acquire = fb._write_bytes, fb.FilesWriter.delete, fb.FileLock.acquire
        def counted_write(path, data, **kwargs):
            counts["inventory" if path.suffix == ".json" else "lock" if path.suffix == ".lock" else "resource"] += 1
            return write(path, data, **kwargs)
        def counted_delete(self, live):
            counts["resource"] += 1
            return delete(self, live)
        def counted_acquire(self, info):
            counts["lock"] += 1
            return acquire(self, info)
        fb._write_bytes, fb.FilesWriter.delete, fb.FileLock.acquire = counted_write, counted_delete, counted_acquire
        atexit.register(lambda: sys.stderr.write("\\nWRITES=" + json.dumps(counts) + "\\n"))
    from planner.applying.locks import HeldLocks
    original = HeldLocks.acquire.__func__
    def at_the_barrier(cls, *args, **kwargs):
        (barrier / f"ready-{me}").touch()
        deadline = time.time() + 180
        while not (barrier / "go").exists():
            if time.time() > deadline:
                sys.exit(3)
            time.sleep(0.001)
        return original(cls, *args, **kwargs)
    HeldLocks.acquire = classmethod(at_the_barrier)
    sys.stderr.write(f"PID={os.getpid()}\\n")
    sys.stderr.flush()
    from planner.cli import main
    sys.exit(main(sys.argv[4:]))
    """
)


def _racer_args(target: Target, proxy: CountingProxy | None, index: int) -> tuple[list[str], dict[str, str]]:
    env = target.child_env(FLOWPLAN_LOCK_HOLDER=f"racer-{index}")
    if isinstance(target, ArgoTarget):
        assert proxy is not None
        env["KUBECONFIG"] = str(target.use_proxy(proxy))
        return target.args(), env
    if isinstance(target, StepFunctionsTarget):
        assert proxy is not None
        path = target.root / f"racer-{index}.vars.yaml"
        values = {"region": target.aws.region, "account_id": target.aws.account, "endpoint_url": proxy.url}
        path.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in values.items()))
        return ["-f", str(target.manifest_path), "--var-file", str(path)], env
    return target.args(), env


def _upstream(target: Target) -> str | None:
    if isinstance(target, ArgoTarget):
        return str(target.server.url)
    if isinstance(target, StepFunctionsTarget):
        return str(target.aws.server.url)
    return None


@pytest.mark.slow
@pytest.mark.parametrize("racers", SCALE.racers)
def test_racing_applies_one_wins_the_others_write_nothing(target: Target, racers: int, trial: Recorder) -> None:
    trial.family, trial.backend = "concurrency", target.kind
    target.write(FLOWS)
    desired = target.desired()
    trial.size = {"racers": racers, "resources": len(desired)}
    barrier = target.root / "barrier"
    barrier.mkdir()
    upstream = _upstream(target)
    proxies = [start_proxy(upstream) for _ in range(racers)] if upstream else []
    logs = [WriteLog() for _ in proxies]
    for proxy, log in zip(proxies, logs, strict=True):
        proxy.rules.append(log)
    processes = []
    try:
        for i in range(racers):
            args, env = _racer_args(target, proxies[i] if proxies else None, i)
            argv = [sys.executable, "-c", _CHILD, str(barrier), str(i), target.kind, "apply", "--auto-approve", *args]
            processes.append(
                subprocess.Popen(
                    argv, env=env, cwd=target.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                )
            )
        deadline = time.monotonic() + 180
        while len(list(barrier.glob("ready-*"))) < racers:
            assert time.monotonic() < deadline, "the racers never reached the barrier"
            assert all(p.poll() is None for p in processes), [
                p.communicate() for p in processes if p.poll() is not None
            ]
            time.sleep(0.01)
        (barrier / "go").touch()
        results = [p.communicate(timeout=240) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
        for proxy in proxies:
            proxy.stop()
    codes = [p.returncode for p in processes]
    winners = [i for i, code in enumerate(codes) if code == 0]
    assert len(winners) == 1, (codes, [err[-1500:] for _, err in results])
    (winner,) = winners
    winner_pid = processes[winner].pid
    writes = []
    for i, (_, err) in enumerate(results):
        if isinstance(target, FilesTarget):
            line = next(x for x in err.splitlines() if x.startswith("WRITES="))
            writes.append(json.loads(line.split("=", 1)[1]))
        else:
            writes.append(logs[i].snapshot())
        if i == winner:
            continue
        assert codes[i] == 1, err
        assert f"is held by racer-{winner} on host " in err and f"(pid {winner_pid}," in err, err[-1500:]
        assert "Traceback" not in err
        assert writes[i]["resource"] == 0 and writes[i]["inventory"] == 0, (i, writes[i])
        assert writes[i]["lock"] + writes[i].get("lock-read", 0) >= 1, (i, writes[i])
    assert writes[winner]["resource"] >= len(desired)
    trial.extra["writes by racer (winner first)"] = [writes[winner], *[w for i, w in enumerate(writes) if i != winner]]
    trial.extra["lock calls by losers"] = sum(
        w["lock"] + w.get("lock-read", 0) for i, w in enumerate(writes) if i != winner
    )
    trial.check("exactly one holds the lock")
    trial.check("the others exit 1 naming it (holder, pid)")
    trial.check("losers: zero resource and inventory writes (lock calls counted apart)")
    assert target.converged() == []
    trial.check("the winner's apply converged")


def test_barrier_child_is_valid_python() -> None:
    compile(_CHILD, "<racer>", "exec")
    assert Path(__file__).exists()
