"""Fenced applies and scope names on the files backend, piece by piece (issue 19).

``test_fenced_apply.py`` pauses a whole apply; these tests take the pieces one at a time: the
lock's fencing token, the inventory's compare-and-swap, the renewer that notices a lost lock,
and the migration from the old, non-injective ``<project>-<branch>`` file names.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from backends import files as files_backend
from backends.files_state import FileLock, JsonFileInventory
from planner.applying.locks import LockRenewer
from planner.contract import InventoryEntry, InventoryState, LockInfo
from planner.errors import ConflictError, LockError
from planner.resources import Address
from tests.planner.loop import Project
from tests.security.conftest import attack

ADDRESS = Address("local", "WorkflowTemplate", "argo", "x")


def _state(version: str | None = None) -> InventoryState:
    return InventoryState(entries={ADDRESS: InventoryEntry("0" * 64)}, version=version)


def _take_over(path: Path) -> None:
    """Another run takes the lock over (what FileLock does with an expired lock)."""
    path.write_text(json.dumps(LockInfo("bob", "other", 2, "apply", time.time(), time.time() + 60, 10**18).to_json()))


@attack("fenced applies: an inventory save after the lock file changed hands is refused", fixed=True)
def test_an_inventory_save_after_a_takeover_is_refused(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / "p.b.lock", "files in deploy/", files_backend._atomic_write)
    lock.acquire(LockInfo.here(ttl=60))
    inventory = JsonFileInventory(tmp_path / "p.b.json", files_backend._atomic_write, fence=lock)
    saved = inventory.save(_state())
    _take_over(lock.path)
    with pytest.raises(LockError, match="was lost: it is now held by bob"):
        inventory.save(saved)
    assert json.loads((tmp_path / "p.b.json").read_text())["entries"]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@attack("fenced applies: an inventory saved from a stale read must not overwrite a newer one", fixed=True)
def test_an_inventory_save_from_a_stale_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.b.json"
    first = JsonFileInventory(path, files_backend._atomic_write)
    first.save(_state())
    one, two = first.load(), JsonFileInventory(path, files_backend._atomic_write).load()
    first.save(one.with_entries({}))
    with pytest.raises(ConflictError, match="changed since this run read it"):
        JsonFileInventory(path, files_backend._atomic_write).save(two)
    assert json.loads(path.read_text())["entries"] == {}


@attack("fenced applies: each acquisition of a lock carries a larger generation, takeovers included", fixed=True)
def test_every_acquisition_raises_the_generation(tmp_path: Path) -> None:
    path = tmp_path / "p.b.lock"
    lock = FileLock(path, "files in deploy/", files_backend._atomic_write)
    lock.acquire(LockInfo.here(ttl=60))
    first = lock.current()
    assert first is not None and first.generation > 0
    path.write_text(json.dumps({**json.loads(path.read_text()), "expires_at": 1, "generation": 10**17}))
    other = FileLock(path, "files in deploy/", files_backend._atomic_write)
    other.acquire(LockInfo("bob", "h", 2, "apply", time.time(), time.time() + 60))
    taken = other.current()
    assert taken is not None and taken.holder == "bob" and taken.generation > 10**17


@attack("fenced applies: a renewal that finds the lock taken over stops the writes that follow", fixed=True)
def test_a_failed_renewal_trips_the_fence(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / "p.b.lock", "files in deploy/", files_backend._atomic_write)
    info = LockInfo.here(ttl=60)
    lock.acquire(info)
    renewer = LockRenewer([(lock, info)], ttl=1.0)
    with renewer:
        renewer.check()
        _take_over(lock.path)
        deadline = time.monotonic() + 5
        while renewer.lost is None and time.monotonic() < deadline:
            time.sleep(0.05)
    with pytest.raises(LockError, match="was lost"):
        renewer.check()


@attack("fenced applies: a lock that ran out while the apply was paused stops it, even before a renewal", fixed=True)
def test_an_expired_renewal_trips_the_fence() -> None:
    renewer = LockRenewer([], ttl=1.0)
    renewer.valid_until = time.time() - 1
    with pytest.raises(LockError, match="expired before it could be renewed"):
        renewer.check()


@attack("names and scopes: an inventory under the old `<project>-<branch>` name is migrated, not lost", fixed=True)
def test_an_inventory_under_the_old_name_is_migrated(tmp_path: Path) -> None:
    project = Project(tmp_path)
    assert project.run("apply", "--auto-approve").code == 0
    state = tmp_path / ".flowplan" / "local"
    (state / "recsys.prod.json").rename(state / "recsys-prod.json")
    assert project.run("plan", "--detailed-exitcode").code == 0  # the old inventory still says what is owned
    project.edit("/ingest:", "/ingest2:")
    assert project.run("apply", "--auto-approve").code == 0
    assert (state / "recsys.prod.json").exists() and not (state / "recsys-prod.json").exists()
    assert project.run("plan", "--detailed-exitcode").code == 0


@attack("names and scopes: a live lock under the old `<project>-<branch>` name still stops an apply", fixed=True)
def test_a_live_lock_under_the_old_name_is_honoured(tmp_path: Path) -> None:
    project = Project(tmp_path)
    old = tmp_path / ".flowplan" / "local" / "recsys-prod.lock"
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps(LockInfo("alice", "ci-7", 4242, "apply", time.time(), time.time() + 600).to_json()))
    result = project.run("apply", "--auto-approve")
    assert result.code == 1 and "alice on host ci-7 (pid 4242" in result.err
    assert project.run("force-unlock", "--yes").code == 0
    assert not old.exists()
    assert project.run("apply", "--auto-approve").code == 0


@attack(
    "names and scopes: Argo inventory shards and Leases of `a`/`b-prod` and `a-b`/`prod` must not share a name",
    fixed=True,
)
def test_argo_scope_names_are_injective() -> None:
    from backends.argo.client import Kube
    from backends.argo.inventory import ConfigMapInventory
    from backends.argo.lock import lock_name
    from planner.contract import Scope

    scopes = [Scope("c", "a", "b-prod"), Scope("c", "a-b", "prod"), Scope("c", "a", "b-prod-1"), Scope("c", "a", "b")]
    names: dict[str, Scope] = {}
    for scope in scopes:
        inventory = ConfigMapInventory(Kube.__new__(Kube), scope, "ns")
        for name in [lock_name(scope), *(inventory.shard_name(i) for i in range(4))]:
            assert names.setdefault(name, scope) == scope, f"{name} names both {names[name]} and {scope}"
