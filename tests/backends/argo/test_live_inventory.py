"""The inventory in ConfigMaps: round trips, one PUT per changed shard, sharding, conflicts, torn saves, intents."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from backends.argo.inventory import ConfigMapInventory, inventory_name
from planner.contract import InventoryEntry, InventoryState, Revision, Scope
from planner.errors import BackendError, ConflictError
from planner.resources import Address
from tests.backends.argo.test_live_support import NAMESPACE, Cluster, cluster
from tests.support.proxy import FaultRule, ForwardThenReset, ProxyRequest, Respond

__all__ = ["cluster"]

SCOPE = Scope("cluster", "recsys", "prod")
NAME = inventory_name(SCOPE)


def _state(entries: int, revisions: int = 0, body_bytes: int = 0) -> InventoryState:
    found = {
        Address("cluster", "WorkflowTemplate", NAMESPACE, f"recsys-prod-flow-{i:04d}"): InventoryEntry(
            f"{i:016x}", "applied", f"flow-{i}"
        )
        for i in range(entries)
    }
    history = [
        Revision(n, "2026-01-01T00:00:00Z", "ci", None, "d" * 64, "0.1.0", {"create": 1}, bodies="x" * body_bytes)
        for n in range(1, revisions + 1)
    ]
    return InventoryState(found, history)


def _history(state: InventoryState) -> list[dict[str, Any]]:
    return [r.to_json() for r in state.revisions]


def _inventory(cluster: Cluster, shard_bytes: int | None = None) -> ConfigMapInventory:
    return cluster.backend(inventory_shard_bytes=shard_bytes).inventory(SCOPE)


def _shards(cluster: Cluster) -> dict[str, dict[str, Any]]:
    return {
        name: obj for name, obj in cluster.objects("ConfigMap").items() if name == NAME or name.startswith(NAME + ".")
    }


def test_an_empty_inventory_loads_with_one_list_and_round_trips(cluster: Cluster) -> None:
    inventory = _inventory(cluster)
    empty = inventory.load()
    assert empty.entries == {} and empty.version is None
    assert cluster.counts() == {"list configmaps": 1}
    saved = inventory.save(_state(3, revisions=2))
    loaded = inventory.load()
    assert loaded.entries == saved.entries and _history(loaded) == _history(saved)
    assert loaded.version == saved.version
    shard = _shards(cluster)[NAME]
    assert shard["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "flowplan",
        "flowplan.dev/project": "recsys",
        "flowplan.dev/branch": "prod",
        "flowplan.dev/inventory": "true",
    }
    assert json.loads(shard["data"]["index.json"])["layout"] == [
        ["entries-000.json", "revision-000001.json", "revision-000002.json"]
    ]


def test_saving_costs_one_put_per_changed_shard_and_nothing_when_unchanged(cluster: Cluster) -> None:
    inventory = _inventory(cluster)
    state = inventory.save(_state(5))
    cluster.proxy.reset_counts()
    assert inventory.save(state).version == state.version
    assert cluster.counts() == {}
    address = next(iter(state.entries))
    pending = dict(state.entries)
    pending[address] = InventoryEntry("ffff", "pending-update", "flow-0")
    state = inventory.save(state.with_entries(pending))
    assert cluster.writes() == {"update configmaps": 1}
    stored = _shards(cluster)[NAME]
    assert json.loads(stored["data"]["entries-000.json"])[str(address)]["state"] == "pending-update"


def test_a_large_inventory_is_sharded_and_only_changed_shards_are_written(cluster: Cluster) -> None:
    inventory = _inventory(cluster, shard_bytes=4000)
    state = inventory.save(_state(120, revisions=6, body_bytes=1500))
    shards = _shards(cluster)
    assert len(shards) > 3
    assert all(sum(len(k) + len(v) for k, v in s["data"].items()) <= 4000 for s in shards.values())
    loaded = inventory.load()
    assert loaded.entries == state.entries and _history(loaded) == _history(state)

    cluster.proxy.reset_counts()
    history = list(state.revisions)
    history[-1] = replace(history[-1], who="someone-else")  # one revision record changes
    state = inventory.save(replace(state, revisions=history))
    puts = [k for k in cluster.proxy.raw_counts() if k.startswith("PUT ")]
    assert len(puts) == 1, puts  # the shard holding that revision; shard 0's index is unchanged

    cluster.proxy.reset_counts()
    # Shrink: the surplus shards are deleted, with preconditions.
    small = inventory.save(replace(_state(2), version=state.version))
    assert set(_shards(cluster)) == {NAME}
    assert cluster.writes()["delete configmaps"] == len(shards) - 1
    assert inventory.load().entries == small.entries


def test_a_single_huge_revision_is_split_into_parts(cluster: Cluster) -> None:
    inventory = _inventory(cluster, shard_bytes=3000)
    state = inventory.save(_state(1, revisions=1, body_bytes=7000))
    index = json.loads(_shards(cluster)[NAME]["data"]["index.json"])
    parts = dict(index["records"])["revision-000001.json"]
    assert len(parts) > 2 and parts[0] == "revision-000001.json.p0"
    assert inventory.load().revisions[0].bodies == state.revisions[0].bodies


def test_a_save_over_someone_elses_write_is_a_conflict(cluster: Cluster) -> None:
    inventory = _inventory(cluster)
    first = inventory.save(_state(2))
    other = _inventory(cluster)
    other.save(replace(other.load(), entries={}))
    with pytest.raises(ConflictError, match="changed by someone else"):
        inventory.save(first.with_entries({}))


def test_a_torn_save_leaves_the_previous_inventory_readable(cluster: Cluster) -> None:
    inventory = _inventory(cluster, shard_bytes=4000)
    before = inventory.save(_state(60, revisions=3, body_bytes=1500))
    grown = _state(60, revisions=8, body_bytes=1500)
    cluster.proxy.rules.append(
        FaultRule(Respond.kubernetes(403, "Forbidden", "injected"), path=rf"/configmaps/{NAME}$", method="PUT")
    )
    with pytest.raises(BackendError):
        inventory.save(replace(grown, version=before.version))  # shards 1.. written, shard 0 (the commit) refused
    cluster.proxy.rules.clear()
    loaded = inventory.load()
    assert loaded.entries == before.entries
    assert [r.number for r in loaded.revisions] == [1, 2, 3]


def test_an_inventory_write_whose_answer_is_lost_is_confirmed_by_reading_back(cluster: Cluster) -> None:
    inventory = _inventory(cluster)
    state = inventory.save(_state(2))
    cluster.proxy.rules.append(FaultRule(ForwardThenReset(), key="update configmaps", times=1))
    saved = inventory.save(state.with_entries({}))
    assert inventory.load().entries == {} and saved.version == inventory.load().version


def test_apply_records_the_intent_before_each_write(cluster: Cluster) -> None:
    seen: dict[str, str] = {}

    def peek(request: ProxyRequest) -> None:
        if request.method == "POST" and request.path.endswith("/cronworkflows"):
            name = json.loads(request.body)["metadata"]["name"]
            shard = cluster.server.get_object("ConfigMap", NAMESPACE, NAME)
            entries = json.loads(shard["data"]["entries-000.json"]) if shard else {}
            seen[name] = entries.get(f"cluster.CronWorkflow.{NAMESPACE}/{name}", {}).get("state", "absent")
        return None

    cluster.proxy.rules.append(peek)
    assert cluster.apply().code == 0
    assert seen == {f"recsys-prod-{f}": "pending-create" for f in ("ingest", "report", "train")}
    final = json.loads(_shards(cluster)[NAME]["data"]["entries-000.json"])
    assert len(final) == 13 and {e["state"] for e in final.values()} == {"applied"}
    index = json.loads(_shards(cluster)[NAME]["data"]["index.json"])
    assert [k for k, _ in index["records"]] == ["entries-000.json", "revision-000001.json"]


def test_the_inventory_is_never_mistaken_for_a_resource(cluster: Cluster) -> None:
    assert cluster.apply().code == 0
    backend = cluster.backend()
    backend.inventory(SCOPE).load()
    live = backend.reader().read(SCOPE, [])
    assert not [a for a in live.owned if a.name.startswith("flowplan-inventory")]
    assert len(live.owned) == 13  # everything else is found (as orphans of an empty manifest) through the inventory


def test_an_inventory_under_the_old_names_is_loaded_and_moved_by_the_next_save(cluster: Cluster) -> None:
    """Older flowplan named the shards ``flowplan-inventory-<project>-<branch>`` and ``-1``, … (two scopes could
    meet in one name); an inventory found only there is loaded, and the next save moves it to the new names."""
    old = _inventory(cluster, shard_bytes=4000)
    old.name, old.shard_name = old.legacy, old._legacy_shard_name  # type: ignore[method-assign]
    written = old.save(_state(40, revisions=2, body_bytes=1500))
    legacy = {n for n in cluster.objects("ConfigMap") if n == old.legacy or n.startswith(old.legacy + "-")}
    assert len(legacy) > 1 and not _shards(cluster)
    inventory = _inventory(cluster, shard_bytes=4000)
    loaded = inventory.load()
    assert loaded.entries == written.entries and _history(loaded) == _history(written)
    saved = inventory.save(loaded)
    names = set(cluster.objects("ConfigMap"))
    assert not names & legacy and len(_shards(cluster)) > 1
    again = inventory.load()
    assert again.entries == written.entries and _history(again) == _history(written)
    assert inventory.save(again).version == saved.version  # nothing left to move: no call
