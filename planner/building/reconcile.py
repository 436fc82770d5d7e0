"""Pending inventory intents a crashed or failed apply left behind, resolved in memory."""

from __future__ import annotations

from collections.abc import Mapping

from planner.contract import InventoryEntry, InventoryState, LiveState
from planner.resources import Address, Resource, spec_hash


def reconcile(
    inventory: InventoryState, live: LiveState, desired: Mapping[Address, Resource]
) -> dict[Address, InventoryEntry]:
    """The inventory as the live state shows it; the next apply persists it.

    A pending create or update whose object exists live is adopted with the
    hash found live; one whose object is missing is dropped. A pending delete
    whose object is gone is dropped; one whose object still exists stays.
    """
    result: dict[Address, InventoryEntry] = {}
    for address, entry in inventory.entries.items():
        found = live.owned.get(address)
        if entry.state == "applied":
            result[address] = entry
            continue
        if found is None:
            continue
        volatile = desired[address].volatile_paths if address in desired else ()
        result[address] = InventoryEntry(spec_hash(found.body, volatile), "applied", entry.flow)
    return result
