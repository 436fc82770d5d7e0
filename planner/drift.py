"""Drift: what was changed outside flowplan, read from a plan's three-way view.

``flowplan drift`` plans (refresh-only: it writes nothing and takes no lock)
and keeps what the world did rather than what the manifest asks:

- ``changed``: live differs from what flowplan last applied (the whole
  normalized body is compared, so a field added by hand — ``suspend: true`` on
  a CronWorkflow, a disabled rule — is drift too);
- ``deleted``: in the inventory, missing live (the next apply recreates it);
- ``conflict``: a desired name taken by an object flowplan does not own;
- ``untracked``: carries this project's markers but is unknown to the
  inventory (made by hand, or an inventory was lost).

Field diffs are shown desired → live: what someone changed, and to what.
"""

from __future__ import annotations

from typing import Any

from planner.plan import Cause, Plan, redact_values

FORMAT_VERSION = 1


def drift_report(plan: Plan) -> dict[str, Any]:
    """The JSON-ready drift report of a plan (redacted)."""
    view = plan.to_json(redact=True)
    items: list[dict[str, Any]] = []
    for change in view["changes"]:
        if not change["drifted"]:
            continue
        kind = "deleted" if change["cause"] == Cause.DELETED_OUTSIDE.value else "changed"
        fields = [
            {
                "path": d["path"],
                "kind": {"added": "removed", "removed": "added"}.get(d["kind"], d["kind"]),
                **({"desired": d["after"]} if "after" in d else {}),
                **({"live": d["before"]} if "before" in d else {}),
                **({"sensitive": True} if d.get("sensitive") else {}),
            }
            for d in change["field_diffs"]
        ]
        items.append(
            {
                "address": change["address"],
                "kind": kind,
                "flow": change["flow"],
                "also_changed_in_manifest": change["cause"] == Cause.BOTH.value,
                "fields": fields,
                "managers": change.get("managers", []),
            }
        )
    for conflict in view["conflicts"]:
        items.append(
            {
                "address": conflict["address"],
                "kind": "conflict",
                "flow": None,
                "also_changed_in_manifest": False,
                "fields": [],
                "managers": [],
                "detail": conflict["detail"],
                "owner": conflict["owner"],
            }
        )
    for address in view.get("untracked", []):
        items.append(
            {
                "address": address,
                "kind": "untracked",
                "flow": None,
                "also_changed_in_manifest": False,
                "fields": [],
                "managers": [],
                "detail": "carries this project's markers but is not in flowplan's inventory",
            }
        )
    items.sort(key=lambda i: (i["kind"], i["address"]))
    counts: dict[str, int] = {"changed": 0, "deleted": 0, "conflict": 0, "untracked": 0}
    for item in items:
        counts[item["kind"]] += 1
    report = {
        "format_version": FORMAT_VERSION,
        "created_at": view["created_at"],
        "inputs": view["inputs"],
        "in_sync": not items,
        "summary": counts,
        "drift": items,
        "pending_manifest_changes": sum(1 for c in view["changes"] if not c["drifted"]),
        "ignored_differences": view.get("ignored_differences", 0),
        "backend_targets": view.get("backend_targets", {}),
    }
    return redact_values(report, plan.sensitive_values)  # type: ignore[no-any-return]
