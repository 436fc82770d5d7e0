"""The locks an apply holds: taken all or none in name order, kept alive while it writes, released last."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace

from planner.building import PlanResult
from planner.contract import Backend, Lock, LockInfo
from planner.errors import FlowplanError, LockError


def backends_to_lock(result: PlanResult) -> list[str]:
    """Every backend the plan changes, in name order (the order every apply takes them, so none deadlock)."""
    return sorted({c.address.backend for c in result.plan.changes})


class HeldLocks:
    """Locks held by one apply; a context manager that releases them in reverse order, whatever happens.

    A backend whose plan moves objects from a renamed project or branch is locked in that old
    scope too: its inventory is written as well.
    """

    def __init__(self, held: list[tuple[Lock, LockInfo]], ttl: float) -> None:
        self.held = held
        self.ttl = ttl

    @classmethod
    def acquire(
        cls, backends: Mapping[str, Backend], result: PlanResult, names: Iterable[str], operation: str, ttl: float
    ) -> HeldLocks:
        """Take the lock of each of ``names`` in name order; on any failure release what was taken and raise."""
        held: list[tuple[Lock, LockInfo]] = []
        info = LockInfo.here(operation, ttl)
        try:
            for name in sorted(set(names)):
                view = result.views[name]
                lock = backends[name].lock(view.scope)
                lock.acquire(info)
                held.append((lock, info))
                moves = any(c.moved_scope and c.address.backend == name for c in result.plan.changes)
                if view.renamed is not None and moves:
                    old_lock = backends[name].lock(view.renamed.scope)
                    old_lock.acquire(info)
                    held.append((old_lock, info))
        except BaseException:
            cls(held, ttl).release()
            raise
        return cls(held, ttl)

    def release(self) -> None:
        """Release in reverse order; a lock already lost or expired is no reason to stop releasing the others."""
        for lock, info in reversed(self.held):
            with contextlib.suppress(FlowplanError):
                lock.release(info)
        self.held = []

    def renewing(self) -> LockRenewer:
        return LockRenewer(self.held, self.ttl)

    def __enter__(self) -> HeldLocks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class LockRenewer:
    """Keeps held locks alive while a long apply runs (a thread renewing at a third of the TTL).

    It is also the apply's fence: :meth:`check`, called before every write and inventory save,
    fails once a renewal failed (the lock was taken over or forced) or once the last successful
    renewal has run out (this process was paused or starved past the TTL, so another run may
    already hold the lock). The check is cheap: it reads this object's state, not the store.
    """

    def __init__(self, locks: list[tuple[Lock, LockInfo]], ttl: float) -> None:
        self.locks = locks
        self.ttl = ttl
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="flowplan-lock-renew", daemon=True)
        #: the renewal failure that lost a lock (None while every lock is held)
        self.lost: FlowplanError | None = None
        #: until when every lock is certainly ours (this machine's clock)
        self.valid_until = min((info.expires_at for _, info in locks if info.expires_at), default=float("inf"))

    def _run(self) -> None:
        while not self.stop.wait(max(0.2, self.ttl / 3)):
            started = time.time()
            renewed = 0
            for lock, info in self.locks:
                try:
                    lock.renew(replace(info, expires_at=started + self.ttl))
                    renewed += 1
                except LockError as exc:
                    self.lost = self.lost or exc
                except FlowplanError:
                    pass  # a failed call is not a lost lock: the next renewal (or the fence's clock) decides
            if renewed == len(self.locks) and self.lost is None:
                self.valid_until = started + self.ttl

    def check(self) -> None:
        """Raise :class:`LockError` when the locks may no longer be ours: nothing more may be written."""
        if self.lost is not None:
            raise self.lost
        if time.time() > self.valid_until:
            raise LockError(
                "the apply lock expired before it could be renewed (this run was paused or starved for longer "
                f"than the lock's {self.ttl:g} s)",
                hint="this run stopped before writing more; another run may have taken over: plan and apply again",
            )

    def __enter__(self) -> LockRenewer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
