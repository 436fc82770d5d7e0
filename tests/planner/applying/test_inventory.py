"""The inventory stage: intents before writes, confirmations after, and the repair of a killed apply."""

from __future__ import annotations

import dataclasses

import pytest

from planner.applying.inventory import InventoryBook, intent, inventory_repairs, old_intent
from planner.contract import InventoryEntry
from planner.plan import Action, ResourceChange
from planner.resources import Address, spec_hash
from tests.planner.applying.conftest import Stand

CRON = Address.parse("local.CronWorkflow.argo/recsys-prod-report")
OLD = Address.parse("local.CronWorkflow.argo/report-legacy")
BEFORE, AFTER = {"spec": {"schedule": "0 6 * * *"}}, {"spec": {"schedule": "0 7 * * *"}}


@pytest.mark.parametrize(
    ("action", "state", "body"),
    [
        (Action.CREATE, "pending-create", AFTER),
        (Action.UPDATE, "pending-update", AFTER),
        (Action.ADOPT, "pending-update", AFTER),
        (Action.REPLACE, "pending-update", AFTER),
        (Action.MOVE, "pending-create", AFTER),
        (Action.DELETE, "pending-delete", BEFORE),
    ],
)
def test_the_intent_names_the_pending_state_and_the_body_to_be(action: Action, state: str, body: dict) -> None:
    after = None if action is Action.DELETE else AFTER
    change = ResourceChange(address=CRON, action=action, before=BEFORE, after=after, flow="report")
    assert intent(change) == InventoryEntry(spec_hash(body, ()), state, "report")  # type: ignore[arg-type]


def test_a_move_leaves_its_old_object_pending_delete_until_it_goes(applied: Stand) -> None:
    change = ResourceChange(address=CRON, action=Action.MOVE, before=BEFORE, after=AFTER, moved_from=OLD, fires=True)
    assert old_intent(change) == InventoryEntry(spec_hash(BEFORE, ()), "pending-delete", None)
    book = InventoryBook(applied.plan(), applied.session.backends, ["local"], dry_run=False)
    book.intend([change])
    book.save({"local"})
    entries = applied.inventory().entries
    assert entries[CRON].state == "pending-create" and entries[OLD].state == "pending-delete"
    book.confirm(change)  # a firing move deleted the old object first
    book.save({"local"})
    entries = applied.inventory().entries
    assert entries[CRON] == InventoryEntry(spec_hash(AFTER, ()), "applied", None) and OLD not in entries


def test_an_empty_apply_stores_what_a_killed_apply_left_unconfirmed(applied: Stand) -> None:
    inventory = applied.session.backends["local"].inventory(applied.scope)
    state = inventory.load()
    killed = {a: dataclasses.replace(e, state="pending-update") for a, e in state.entries.items()}
    inventory.save(state.with_entries(killed))

    first = applied.plan()
    assert first.plan.is_empty
    assert set(inventory_repairs(first)) == {"local"}
    transaction = applied.transaction()
    assert transaction.needs_repair(first)
    repaired = transaction.repair(first)
    assert repaired.inventories == {"local": len(state.entries)} and repaired.leftovers == {}
    assert {e.state for e in applied.inventory().entries.values()} == {"applied"}
    assert not applied.lock_file().exists()
    assert not transaction.needs_repair(applied.plan())


def test_a_repair_does_nothing_when_planning_again_finds_changes(applied: Stand) -> None:
    inventory = applied.session.backends["local"].inventory(applied.scope)
    state = inventory.load()
    inventory.save(
        state.with_entries({a: dataclasses.replace(e, state="pending-update") for a, e in state.entries.items()})
    )
    first = applied.plan()
    (applied.project.root / "deploy/argo/workflowtemplate/recsys-prod-report.yaml").unlink()  # meanwhile
    assert applied.transaction().repair(first).inventories == {}
    assert {e.state for e in applied.inventory().entries.values()} == {"pending-update"}
