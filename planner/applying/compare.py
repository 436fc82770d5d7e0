"""The comparison that makes an apply write only what the person saw: the same inputs, target and change set."""

from __future__ import annotations

from planner.errors import StalePlanError
from planner.plan import Plan


def check_same(expected: Plan, actual: Plan, what: str) -> None:
    """Refuse when planning again gives other inputs, another target or another change set.

    ``what`` names the expected plan in the refusal ("the plan shown", "the saved plan FILE").
    """
    a, b = expected.inputs.to_json(), actual.inputs.to_json()
    differing = sorted(k for k in a if a[k] != b.get(k))
    if differing:
        raise StalePlanError(
            f"{what} was made from different inputs ({', '.join(differing)} changed); nothing was written",
            hint="make a new plan and review it",
        )
    moved_targets = sorted(
        name
        for name in expected.backend_targets
        if name in actual.backend_targets and expected.backend_targets[name] != actual.backend_targets[name]
    )
    if moved_targets:
        name = moved_targets[0]
        raise StalePlanError(
            f"{what} was made against another target: backend {name!r} was {expected.backend_targets[name]}, "
            f"now it is {actual.backend_targets[name]}; nothing was written",
            hint="check the kubeconfig context, endpoint or directory; make a new plan against the right target",
        )
    if expected.change_set_digest() != actual.change_set_digest():
        detail = change_set_difference(expected, actual)
        raise StalePlanError(
            f"{what} is stale: planning again gives a different change set ({detail}); nothing was written",
            hint="someone or something changed the deployed state or the manifest; make a new plan and review it",
        )


def change_set_difference(expected: Plan, actual: Plan) -> str:
    """Up to five addresses whose planned change differs, each saying how."""
    before = {str(c.address): c for c in expected.changes}
    after = {str(c.address): c for c in actual.changes}
    parts = []
    for address in sorted(set(before) | set(after)):
        old, new = before.get(address), after.get(address)
        if old is not None and new is not None and old.identity() == new.identity():
            continue
        if new is None:
            assert old is not None
            parts.append(f"{address} ({old.action.value} no longer planned)")
        elif old is None:
            parts.append(f"{address} ({new.action.value} now planned)")
        elif old.action is not new.action:
            parts.append(f"{address} ({old.action.value} became {new.action.value})")
        else:
            parts.append(f"{address} ({new.action.value} with other content or another live version)")
    if not parts:
        return "the conflicts differ"
    more = f", and {len(parts) - 5} more" if len(parts) > 5 else ""
    return ", ".join(parts[:5]) + more
