"""The revision stage: numbered per backend, bodies kept for the last ten, sensitive values as hashes."""

from __future__ import annotations

import base64
import hashlib
import json
import zlib

from planner.applying.revision import MAX_REVISIONS, REVISIONS_WITH_BODIES, hashed_sensitive, with_revision
from planner.building import PlanOptions
from planner.contract import InventoryState, Revision
from planner.plan import Action, ResourceChange
from planner.resources import Address
from tests.planner.applying.conftest import Stand

SECRET = Address.parse("local.ConfigMap.argo/recsys-prod-sink-warehouse")


def _revision(number: int) -> Revision:
    return Revision(number, "2026-01-01T00:00:00Z", "me", None, "d" * 64, "1", {"create": 1}, (), bodies="x")


def test_a_sensitive_value_is_kept_as_its_hash_and_the_plan_is_not_touched() -> None:
    body = {"data": {"password": "hunter2", "user": "svc"}}
    change = ResourceChange(address=SECRET, action=Action.NOOP, after=body, sensitive_paths=("/data/password",))
    digest = hashlib.sha256(b"hunter2").hexdigest()[:16]
    assert hashed_sensitive(change) == {"data": {"password": f"(sensitive sha256:{digest})", "user": "svc"}}
    assert body["data"]["password"] == "hunter2"


def test_only_the_last_ten_revisions_keep_bodies_and_at_most_a_hundred_are_kept() -> None:
    state = InventoryState()
    for number in range(1, 106):
        state = with_revision(state, _revision(number))
    assert len(state.revisions) == MAX_REVISIONS and state.revisions[-1].number == 105
    with_bodies = [r.number for r in state.revisions if r.bodies is not None]
    assert len(with_bodies) <= REVISIONS_WITH_BODIES and with_bodies[-1] == 105


def test_each_apply_records_the_next_number_with_what_changed(applied: Stand) -> None:
    (first,) = applied.inventory().revisions
    assert first.number == 1 and first.summary == {"create": 13}
    bodies = json.loads(zlib.decompress(base64.b64decode(first.bodies or "")))
    assert len(bodies) == 13 and all(isinstance(b, dict) for b in bodies.values())
    destroy = PlanOptions(targets=("report",), mode="destroy", allow_destroy=True)
    outcome = applied.transaction(plan_options=destroy).apply(applied.plan(destroy))
    assert outcome.ok and outcome.revision == 2
    second = applied.inventory().revisions[-1]
    assert second.summary == {"delete": 2} and json.loads(zlib.decompress(base64.b64decode(second.bodies or ""))) == {}
