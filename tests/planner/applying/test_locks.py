"""The lock stage: all or none, in name order, renewed while writing, released whatever happens."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import pytest

from planner.applying.locks import HeldLocks, backends_to_lock
from planner.contract import LockInfo, Scope
from planner.errors import LockError
from tests.planner.applying.conftest import Stand


class DictLock:
    """An in-memory lock (a dict as its store), refusing any second holder."""

    def __init__(self, store: dict[str, LockInfo], key: str, taken: list[str], renewed: threading.Event | None) -> None:
        self.store, self.key, self.taken, self.renewed = store, key, taken, renewed

    def acquire(self, info: LockInfo) -> None:
        self.taken.append(self.key)
        if self.key in self.store:
            raise LockError(f"{self.key} is held by {self.store[self.key].holder}")
        self.store[self.key] = info

    def renew(self, info: LockInfo) -> None:
        self.store[self.key] = info
        if self.renewed is not None:
            self.renewed.set()

    def release(self, info: LockInfo) -> None:
        self.store.pop(self.key, None)

    def current(self) -> LockInfo | None:
        return self.store.get(self.key)


class DictLockBackend:
    """Only what locking asks of a backend: ``lock(scope)``."""

    def __init__(
        self, store: dict[str, LockInfo], taken: list[str] | None = None, renewed: threading.Event | None = None
    ) -> None:
        self.store, self.renewed = store, renewed
        self.taken = taken if taken is not None else []

    def lock(self, scope: Scope) -> DictLock:
        return DictLock(self.store, f"{scope.backend}/{scope.project}-{scope.branch}", self.taken, self.renewed)


def _with_second_backend(stand: Stand, name: str) -> Any:
    """The stand's first plan with a second backend's view beside ``local`` (same inventory, other scope)."""
    result = stand.plan()
    view = result.views["local"]
    result.views[name] = dataclasses.replace(view, scope=Scope(name, view.scope.project, view.scope.branch))
    return result


def test_the_files_lock_is_held_with_its_operation_and_released(stand: Stand) -> None:
    result = stand.plan()
    assert backends_to_lock(result) == ["local"]
    with HeldLocks.acquire(stand.session.backends, result, ["local"], "destroy", 60):
        holder = stand.session.backends["local"].lock(stand.scope).current()
        assert holder is not None and holder.operation == "destroy"
    assert not stand.lock_file().exists()


def test_a_lock_that_cannot_be_taken_releases_those_already_taken(stand: Stand) -> None:
    store = {"zz/recsys-prod": LockInfo("alice", "h", 1)}
    backends = {**stand.session.backends, "zz": DictLockBackend(store)}
    with pytest.raises(LockError, match="held by alice"):
        HeldLocks.acquire(backends, _with_second_backend(stand, "zz"), ["zz", "local"], "apply", 60)
    assert not stand.lock_file().exists(), "local was locked first (name order) and must be released"
    assert store == {"zz/recsys-prod": LockInfo("alice", "h", 1)}


def test_locks_are_taken_in_name_order_and_released_in_reverse(stand: Stand) -> None:
    store: dict[str, LockInfo] = {}
    taken: list[str] = []
    backends = {"b": DictLockBackend(store, taken), "a": DictLockBackend(store, taken)}
    result = _with_second_backend(stand, "a")
    result.views["b"] = dataclasses.replace(result.views["a"], scope=Scope("b", "recsys", "prod"))
    held = HeldLocks.acquire(backends, result, ["b", "a"], "apply", 60)
    assert taken == ["a/recsys-prod", "b/recsys-prod"] and set(store) == set(taken)
    held.release()
    assert store == {}


def test_held_locks_are_renewed_while_writes_run(stand: Stand) -> None:
    renewed = threading.Event()
    store: dict[str, LockInfo] = {}
    backends = {"zz": DictLockBackend(store, renewed=renewed)}
    with HeldLocks.acquire(backends, _with_second_backend(stand, "zz"), ["zz"], "apply", 0.3) as held:
        first = store["zz/recsys-prod"]
        with held.renewing():
            assert renewed.wait(10), "a lock with a 0.3 s TTL was not renewed"
        assert store["zz/recsys-prod"].expires_at > first.expires_at
    assert store == {}
