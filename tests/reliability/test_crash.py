"""Crash consistency: an apply SIGKILLed at a random point is repaired by the next one, every time.

Each trial deploys a generated manifest, moves it on (creates, updates and
deletes to make), and starts ``flowplan apply`` for the new version in a
child process, which is killed with SIGKILL at a seeded random write:

- live backends: the counting proxy (in this process) kills the child when
  its N-th write request arrives — before forwarding it (the write never
  happens) or after the server applied it (the answer never arrives). Writes
  of a wave run in parallel, so other writes are in flight: mid-wave. N is
  drawn from 1 to the number of writes a whole apply makes (lock, inventory
  and resource writes alike), measured by the first, unkilled trial;
- files backend: the child kills itself before or after its N-th file write
  (resource files, inventory, lock).

Then, in this process: a lock the killed child left is reported with its
holder (the child's pid) and refused until its TTL (``FLOWPLAN_LOCK_TTL``, 2 s
here) runs out; the next apply converges; the plan is empty, no orphans,
nothing lost, the inventory matches what is live.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest

from planner.contract import LockInfo, lock_ttl
from planner.errors import LockError
from tests.reliability.harness import FilesTarget, Recorder, Target, WriteLog, scale, write_category
from tests.support.proxy import ForwardThenReset, ProxyRequest, ResetBeforeForward

SCALE = scale()
TTL = 3.0
CHILD_TIMEOUT = 240

_FILES_CHILD = textwrap.dedent(
    """
    import atexit, os, signal, sys, threading
    from backends import files
    limit, after = int(sys.argv[1]), sys.argv[2] == "after"
    count = [0]
    lock = threading.Lock()
    def hit():
        with lock:
            count[0] += 1
            return count[0] == limit
    def killing(fn):
        def wrapper(*args, **kwargs):
            last = hit()
            if last and not after:
                os.kill(os.getpid(), signal.SIGKILL)
            result = fn(*args, **kwargs)
            if last:
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        return wrapper
    files._write_bytes = killing(files._write_bytes)
    files.FilesWriter.delete = killing(files.FilesWriter.delete)
    files.FileLock.acquire = killing(files.FileLock.acquire)
    sys.stderr.write(f"PID={os.getpid()}\\n")
    sys.stderr.flush()
    atexit.register(lambda: sys.stderr.write(f"\\nWRITES={count[0]}\\n"))
    from planner.cli import main
    sys.exit(main(sys.argv[3:]))
    """
)


class KillAt:
    """A proxy rule: SIGKILL the child at its ``n``-th write request (before or after forwarding it)."""

    def __init__(self, n: int, after: bool) -> None:
        self.n = n
        self.after = after
        self.pid: int | None = None
        self.seen = 0
        self.fired: str | None = None
        self.lock = threading.Lock()

    def kill(self) -> None:
        if self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)

    def __call__(self, request: ProxyRequest) -> Any:
        category = write_category(request)
        if category is None:
            return None
        with self.lock:
            self.seen += 1
            if self.seen != self.n:
                return None
            self.fired = f"{'after' if self.after else 'before'} write {self.n} ({category}: {request.key})"
        return ForwardThenReset(hook=self.kill) if self.after else ResetBeforeForward(hook=self.kill)


def _run_child(target: Target, n: int | None, after: bool) -> tuple[subprocess.CompletedProcess[str], KillAt | None]:
    env = target.child_env(FLOWPLAN_LOCK_TTL=str(TTL), FLOWPLAN_LOCK_HOLDER="crash-child")
    args = ["apply", "--auto-approve", "--allow-destroy", *target.args()]
    if isinstance(target, FilesTarget):
        argv = [sys.executable, "-c", _FILES_CHILD, str(n or 10**9), "after" if after else "before", *args]
        child = subprocess.run(argv, env=env, cwd=target.root, capture_output=True, text=True, timeout=CHILD_TIMEOUT)
        return child, None
    proxy = target.proxy  # type: ignore[attr-defined]
    killer = KillAt(n or 10**9, after)
    log = WriteLog()
    proxy.rules[:] = [log, killer]
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; from planner.cli import main; sys.exit(main(sys.argv[1:]))", *args],
        env=env,
        cwd=target.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killer.pid = process.pid
    out, err = process.communicate(timeout=CHILD_TIMEOUT)
    proxy.rules.clear()
    killer.seen = sum(log.snapshot().values())
    return subprocess.CompletedProcess(process.args, process.returncode, out, err), killer


def child_pid(child: subprocess.CompletedProcess[str], killer: KillAt | None) -> int:
    if killer is not None and killer.pid is not None:
        return killer.pid
    for line in child.stderr.splitlines():
        if line.startswith("PID="):
            return int(line.split("=", 1)[1])
    raise AssertionError("the child did not report its pid")


def _writes_of(child: subprocess.CompletedProcess[str], killer: KillAt | None) -> int:
    if killer is not None:
        return killer.seen
    for line in child.stderr.splitlines():
        if line.startswith("WRITES="):
            return int(line.split("=", 1)[1])
    raise AssertionError(f"the child did not report its writes: {child.stderr[-2000:]}")


def _wait_for_expiry(target: Target) -> None:
    deadline = time.monotonic() + TTL + 10
    while time.monotonic() < deadline:
        holder = target.lock()
        if holder is None or holder.expired:
            return
        time.sleep(0.2)
    raise AssertionError("the killed child's lock did not expire after its TTL")


@pytest.mark.slow
def test_sigkill_at_random_points_then_a_rerun_converges(target: Target, trial: Recorder) -> None:
    trial.family, trial.backend = "crash consistency", target.kind
    rng = random.Random(f"crash-{target.kind}")
    flows = SCALE.crash_flows
    total_writes = 0
    kinds: dict[str, int] = {}
    locks_reported = 0
    trials = SCALE.crash_trials + 1  # the first measures a whole apply's writes and is not killed
    number = -1
    runs = 0
    while number < trials - 1:
        number += 1
        runs += 1
        assert runs <= 3 * trials, "too many runs that ended before their kill point"
        from tests.reliability.harness import reset_target

        reset_target(target)
        target.write(flows, variant=0)
        base = target.apply()
        assert base.code == 0, base.text
        target.write(flows, variant=1)
        if number == 0:
            n, after = None, False
        else:
            n, after = rng.randint(1, total_writes), rng.random() < 0.5
        child, killer = _run_child(target, n, after)
        if number == 0:
            assert child.returncode == 0, child.stderr[-3000:]
            total_writes = _writes_of(child, killer)
            trial.size["writes per apply"] = total_writes
            assert target.converged() == []
            continue
        if child.returncode == 0 and n is not None and (killer is None or killer.fired is None):
            # fewer writes this time (lock renewals depend on timing): not a kill; check it and draw again
            assert target.converged() == []
            total_writes = max(1, min(total_writes, _writes_of(child, killer)))
            number -= 1
            continue
        assert child.returncode == -signal.SIGKILL, (n, child.returncode, child.stderr[-3000:])
        if killer is not None and killer.fired:
            what = killer.fired.split("(", 1)[1].split(":", 1)[0]
        else:
            what = "file write"
        kinds[what] = kinds.get(what, 0) + 1
        holder = target.lock()
        if holder is not None and not holder.expired:
            assert (holder.holder, holder.pid) == ("crash-child", child_pid(child, killer)), holder
            # Another run asking for the lock is refused, told who holds it (the apply below may come too late
            # on a slow backend: its plan can outlast the short TTL, and then it rightly takes the lock over).
            with pytest.raises(LockError, match=f"held by crash-child on host .* \\(pid {holder.pid},"):
                target.backend().lock(target.scope()).acquire(LockInfo.here(ttl=60))
            held = target.apply()
            if held.code == 1:
                assert f"is held by crash-child on host {holder.host} (pid {holder.pid}" in held.err, held.err
                locks_reported += 1
            else:
                assert held.code == 0, held.text
                # nothing to change (killed after its last write) needs no lock; otherwise the lock had expired
                assert "No changes" in held.out or time.time() > holder.expires_at, "took a lock that had not expired"
            _wait_for_expiry(target)
        rerun = target.apply()
        assert rerun.code == 0, f"trial {number} (kill at write {n}, {'after' if after else 'before'}): {rerun.text}"
        problems = target.converged()
        assert problems == [], f"trial {number}: {problems}"
    trial.size.update({"trials": trials - 1, "flows": flows, "resources": len(target.desired())})
    trial.faults = {"SIGKILL": trials - 1}
    trial.extra["killed during"] = kinds
    trial.extra["locks left and reported"] = locks_reported
    trial.check("every rerun converges: plan empty, no orphans, nothing lost")
    trial.check("inventory equals live")
    trial.check("a left lock names its holder, expires after its TTL")


# --------------------------------------------------------------------------- the TTL knob (fast)


def test_the_lock_ttl_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWPLAN_LOCK_TTL", "2.5")
    info = LockInfo.here()
    assert info.expires_at - info.acquired_at == pytest.approx(2.5)
    assert lock_ttl() == 2.5
    monkeypatch.delenv("FLOWPLAN_LOCK_TTL")
    assert lock_ttl() == 300.0
    for bad in ("soon", "0", "-1", "inf", "nan"):
        monkeypatch.setenv("FLOWPLAN_LOCK_TTL", bad)
        with pytest.raises(LockError, match="FLOWPLAN_LOCK_TTL"):
            lock_ttl()


def test_a_bad_lock_ttl_is_one_clear_error(files_target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    target = files_target
    target.write(2)
    monkeypatch.setenv("FLOWPLAN_LOCK_TTL", "five minutes")
    result = target.apply()
    assert result.code == 1
    assert "FLOWPLAN_LOCK_TTL='five minutes' is not a number of seconds" in result.err
    assert "Traceback" not in result.err
    assert not (target.root / "deploy").exists()
