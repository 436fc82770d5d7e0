"""Synthetic plans for renderer tests: many changes, long names, no backend needed."""

from __future__ import annotations

import re
from collections import Counter

from planner.plan import Action, Cause, FieldDiff, Plan, PlanInputs, ResourceChange
from planner.resources import Address

KINDS = ("WorkflowTemplate", "CronWorkflow", "Sensor", "ConfigMap")
NOW = "2026-01-01T00:00:00Z"


def long_name(i: int, kind: str) -> str:
    """A 60-odd character Kubernetes-style name, unique per index."""
    stem = "feature-backfill" if i % 2 else "model-training"
    return f"recsys-prod-{stem}-{kind.lower()}-{i:05d}-eu-west-1-nightly"[:63]


def big_plan(total: int = 3000, destroys: int = 1000, name=long_name, namespace: str = "ml-pipelines-prod") -> Plan:
    """``total`` changes: ``destroys`` deletes first, then updates and creates, each with field diffs."""
    changes = []
    for i in range(total):
        kind = KINDS[i % len(KINDS)]
        address = Address("argo-prod-eu", kind, namespace, name(i, kind))
        flow = f"flow-{i % 40:02d}"
        if i < destroys:
            changes.append(
                ResourceChange(
                    address, Action.DELETE, Cause.ORPHAN, reason="no longer declared in the manifest", flow=flow
                )
            )
        elif i % 2:
            diffs = tuple(
                FieldDiff(
                    f"/spec/templates/{j}/container/image", "ghcr.io/acme/x:2026.11.1", "ghcr.io/acme/x:2026.12.0"
                )
                for j in range(6)
            )
            changes.append(ResourceChange(address, Action.UPDATE, field_diffs=diffs, flow=flow))
        else:
            body = {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": kind,
                "spec": {f"key{j}": f"value-{i}-{j}" for j in range(12)},
            }
            changes.append(ResourceChange(address, Action.CREATE, after=body, flow=flow))
    return plan_of(changes)


def plan_of(changes: list[ResourceChange], **extra: object) -> Plan:
    inputs = PlanInputs("recsys", "prod", "d" * 64, "v" * 64, ("argo-prod-eu",), "0.1.0")
    ordered = tuple(sorted(changes, key=lambda c: c.address.sort_key()))
    return Plan(ordered, (), inputs, "fp", NOW, **extra)  # type: ignore[arg-type]


_SECTION = re.compile(r"^#### (Destroyed|Replaced \(destroyed, then created\)|Moved) \((\d+)\)( \(continued\))?$")


def listed(markdown: str) -> Counter[str]:
    """Addresses listed under the Destroyed/Replaced/Moved headings of one part, in any of the three styles.

    rich: ``- `address` ...`` lines; bare: one address per line in a code
    block; grouped: a ``backend.Kind.namespace/[name-stem]…`` line, then the indented rest of each name.
    """
    found: Counter[str] = Counter()
    inside = in_code = False
    prefix = ""
    for line in markdown.splitlines():
        if line.startswith("#### "):
            inside = bool(_SECTION.match(line))
            continue
        if not inside:
            continue
        if line.startswith("```"):
            in_code = not in_code
            if not in_code:
                inside = False
            continue
        if in_code:
            if line.startswith("  "):
                found[prefix + line.strip()] += 1
            elif line.endswith(("/", "…")):
                prefix = line.rstrip("…")
            elif line:
                found[line] += 1
        elif line.startswith("- `"):
            found[line[3 : line.index("`", 3)]] += 1
    return found
