"""Plan, save, check and apply: the orchestration behind ``plan``, ``apply`` and ``destroy``.

``apply`` never writes what the person did not see: it plans without a lock,
shows the plan, asks, then takes the locks, plans again and refuses if the
change set moved in between. ``apply FILE`` does the same against the saved
plan, before taking any lock, so a stale plan writes nothing at all.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.apply import (
    ApplyOptions,
    LockRenewer,
    acquire_locks,
    apply_plan,
    inventory_repairs,
    raise_for_outcome,
    release_locks,
    repair_inventories,
)
from planner.builder import PlanOptions, PlanResult, build_plan
from planner.cli.progress import Progress
from planner.cli.session import ManifestOptions, Session, load
from planner.errors import FlowplanError, StalePlanError
from planner.plan import Plan, plan_file_checksum
from planner.render import render_text

PLAN_FILE_KIND = "flowplan-saved-plan"


def make_plan(
    options: ManifestOptions,
    *,
    targets: Sequence[str] = (),
    destroy: bool = False,
    allow_destroy: bool = False,
    plan_options: PlanOptions | None = None,
) -> tuple[Session, PlanResult]:
    session = load(options)
    if plan_options is None:
        plan_options = PlanOptions(
            targets=tuple(targets), mode="destroy" if destroy else "normal", allow_destroy=allow_destroy
        )
    result = build_plan(session.manifest, session.backends, session.provenance, plan_options)
    return session, result


def plan_options_json(options: PlanOptions) -> dict[str, Any]:
    return {
        "targets": list(options.targets),
        "mode": options.mode,
        "allow_destroy": options.allow_destroy,
        "adopt": options.adopt,
        "imports": list(options.imports),
        "import_from": [list(pair) for pair in options.import_from],
    }


def plan_options_from_json(data: dict[str, Any]) -> PlanOptions:
    return PlanOptions(
        targets=tuple(data.get("targets", [])),
        mode=str(data.get("mode", "normal")),
        allow_destroy=bool(data.get("allow_destroy", False)),
        adopt=bool(data.get("adopt", False)),
        imports=tuple(data.get("imports", [])),
        import_from=tuple((str(a), str(b)) for a, b in data.get("import_from", [])),
    )


@dataclass(frozen=True)
class SavedPlan:
    plan: Plan
    options: ManifestOptions
    plan_options: PlanOptions


def save_plan(path: str, plan: Plan, options: ManifestOptions, plan_options: PlanOptions) -> None:
    payload = {
        "plan": plan.to_json(redact=False, bodies=True),
        "manifest_options": options.to_json(),
        "plan_options": plan_options_json(plan_options),
    }
    document = {
        "kind": PLAN_FILE_KIND,
        "format_version": 1,
        "checksum": plan_file_checksum(payload),
        "payload": payload,
    }
    text = json.dumps(document, indent=1, sort_keys=True) + "\n"
    target = Path(path)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def read_plan_file(path: str) -> SavedPlan:
    try:
        document = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FlowplanError(f"no plan file at {path}", hint="make one with `flowplan plan --out FILE`") from None
    except (ValueError, UnicodeDecodeError):
        raise StalePlanError(f"{path} is not a flowplan plan file (it does not parse as one)") from None
    if not isinstance(document, dict) or document.get("kind") != PLAN_FILE_KIND:
        raise StalePlanError(f"{path} is not a flowplan plan file")
    payload = document.get("payload")
    if not isinstance(payload, dict) or document.get("checksum") != plan_file_checksum(payload):
        raise StalePlanError(
            f"{path} was modified after flowplan wrote it; refusing to apply it",
            hint="make a new plan with `flowplan plan --out FILE`",
        )
    try:
        plan = Plan.from_json(payload["plan"])
        options = ManifestOptions.from_json(payload["manifest_options"])
        plan_options = plan_options_from_json(payload.get("plan_options", {}))
    except (KeyError, ValueError, TypeError) as exc:
        raise StalePlanError(f"{path} cannot be read as a plan ({exc})") from None
    return SavedPlan(plan, options, plan_options)


def check_same(expected: Plan, actual: Plan, what: str) -> None:
    """Refuse when planning again gives other inputs or another change set."""
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
        detail = _change_set_difference(expected, actual)
        raise StalePlanError(
            f"{what} is stale: planning again gives a different change set ({detail}); nothing was written",
            hint="someone or something changed the deployed state or the manifest; make a new plan and review it",
        )


def _change_set_difference(expected: Plan, actual: Plan) -> str:
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


def _refuse_other_options(
    plan_file: str, saved: SavedPlan, options: ManifestOptions, plan_options: PlanOptions
) -> None:
    """``apply FILE`` reads the manifest exactly as the plan did; an option asking for something else is refused.

    Options left at their defaults are not a request (``apply plan.bin`` alone
    is the normal use); one given with another value than the saved plan's —
    another branch, var, var file, manifest, target — would otherwise be
    silently ignored, and the apply would write what the person did not ask for.
    """
    default, saved_options = ManifestOptions(), saved.options
    asked: list[tuple[str, object, object]] = []
    if options.file != default.file and Path(options.file).resolve() != Path(saved_options.file).resolve():
        asked.append(("--file", options.file, saved_options.file))
    if options.branch != default.branch and options.branch != saved_options.branch:
        asked.append(("--branch", options.branch, saved_options.branch))
    if options.cli_vars and options.cli_vars != saved_options.cli_vars:
        shown = [f"{k}={v}" for k, v in options.cli_vars]
        asked.append(("--var", " ".join(shown), " ".join(f"{k}={v}" for k, v in saved_options.cli_vars) or "none"))
    if options.var_files and tuple(map(_resolved, options.var_files)) != tuple(map(_resolved, saved_options.var_files)):
        asked.append(("--var-file", " ".join(options.var_files), " ".join(saved_options.var_files) or "none"))
    if options.enable_schedules and not saved_options.enable_schedules:
        asked.append(("--enable-schedules", "on", "off"))
    if plan_options.targets and plan_options.targets != saved.plan_options.targets:
        asked.append(("--target", " ".join(plan_options.targets), " ".join(saved.plan_options.targets) or "none"))
    if plan_options.adopt and not saved.plan_options.adopt:
        asked.append(("--adopt", "on", "off"))
    if asked:
        option, wanted, recorded = asked[0]
        made = f"with {option} {recorded}" if recorded not in ("none", "off") else f"without {option}"
        raise StalePlanError(
            f"the saved plan {plan_file} was made {made}, and this apply asks for {option} {wanted}; "
            "nothing was written",
            hint="`flowplan apply FILE` takes every manifest option from the plan: drop the option, or make a new "
            "plan with it (`flowplan plan ... --out FILE`)",
        )


def _resolved(path: str) -> Path:
    return Path(path).resolve()


def apply_command(
    *,
    plan_file: str | None,
    options: ManifestOptions,
    plan_options: PlanOptions,
    auto_approve: bool,
    parallelism: int,
    dry_run: bool,
    color: bool,
) -> int:
    destroy = plan_options.mode == "destroy"
    if plan_file is not None:
        saved = read_plan_file(plan_file)
        _refuse_other_options(plan_file, saved, options, plan_options)
        session, result = make_plan(saved.options, plan_options=saved.plan_options)
        check_same(saved.plan, result.plan, f"the saved plan {plan_file}")
        shown = saved.plan
        plan_options = saved.plan_options
        destroy = plan_options.mode == "destroy"
    else:
        session, result = make_plan(options, plan_options=plan_options)
        sys.stdout.write(render_text(result.plan, color=color))
        shown = result.plan
    if result.plan.is_empty:
        sys.stdout.write("Nothing to apply.\n" if plan_file else "")
        if not dry_run and (inventory_repairs(result) or _leftovers(session)):
            _repair_inventories(session, result, plan_options)
        return 1 if result.plan.conflicts else 0
    if plan_file is None and not auto_approve and not dry_run and not _confirm(destroy):
        sys.stderr.write("Apply cancelled; nothing was written.\n")
        return 1
    apply_options = ApplyOptions(parallelism=parallelism, dry_run=dry_run, operation="destroy" if destroy else "apply")
    held = [] if dry_run else acquire_locks(session.backends, result, apply_options)
    try:
        if not dry_run:
            # Plan again under the lock: apply exactly what was shown, or nothing. The live state is read
            # anew; the manifest is the one just shown (loaded and compiled once).
            locked = build_plan(
                session.manifest, session.backends, session.provenance, plan_options, compiled=result.compiled
            )
            check_same(shown, locked.plan, "the plan shown")
            result = locked
        progress = Progress(len(result.plan.changes), dry_run=dry_run)
        with LockRenewer(held, apply_options.lock_ttl), progress:
            outcome = apply_plan(result, session.backends, session.provenance, apply_options, progress.event)
    finally:
        release_locks(held)
    summary = _outcome_summary(result.plan, outcome.succeeded, dry_run)
    sys.stdout.write(summary + "\n")
    raise_for_outcome(outcome)
    if result.plan.conflicts:
        sys.stderr.write(
            f"{len(result.plan.conflicts)} conflict(s) were left untouched; see the plan. Exit 1 until resolved.\n"
        )
        return 1
    return 0


def _leftovers(session: Session) -> list[str]:
    """Backends holding leftovers of a killed apply (temporary files of the files backend)."""
    return sorted(name for name, b in session.backends.items() if b.capabilities.leftovers and b.leftovers())


def _repair_inventories(session: Session, result: PlanResult, plan_options: PlanOptions) -> None:
    """Nothing to change, but a killed apply left intents in an inventory (or temporary files): tidy under the lock."""
    repairs = inventory_repairs(result)
    untidy = _leftovers(session)
    options = ApplyOptions(operation="apply")
    held = acquire_locks(session.backends, result, options, names=sorted({*repairs, *untidy}))
    try:
        _, locked = make_plan(session.options, plan_options=plan_options)
        if not locked.plan.is_empty:
            return  # someone changed something meanwhile: the next apply records it with its changes
        repairs = inventory_repairs(locked)
        repair_inventories(locked, session.backends, repairs)
        for name in untidy:
            removed = session.backends[name].clean_leftovers()
            if removed:
                sys.stderr.write(f"Removed {len(removed)} temporary file(s) an interrupted apply left on {name}.\n")
    finally:
        release_locks(held)
    if repairs:
        count = sum(len(entries) for entries in repairs.values())
        sys.stderr.write(
            f"Recorded the inventory of {', '.join(sorted(repairs))} again ({count} entries): an earlier apply "
            "stopped before confirming its last writes.\n"
        )


def _confirm(destroy: bool) -> bool:
    if not sys.stdin.isatty():
        raise FlowplanError(
            "apply needs confirmation, and there is no terminal to ask on",
            hint="pass --auto-approve in CI, or apply a reviewed plan file: flowplan apply plan.bin",
        )
    question = "Destroy these objects?" if destroy else "Apply these changes?"
    sys.stdout.write(f"\n{question} Only 'yes' is accepted: ")
    sys.stdout.flush()
    answer = sys.stdin.readline().strip()
    return answer == "yes"


def _outcome_summary(plan: Plan, succeeded: Sequence[Any], dry_run: bool) -> str:
    done = set(succeeded)
    counts: dict[str, int] = {}
    for change in plan.changes:
        if change.address in done:
            counts[change.action.value] = counts.get(change.action.value, 0) + 1
    words = {
        "create": "created",
        "update": "updated",
        "replace": "replaced",
        "delete": "destroyed",
        "adopt": "adopted",
        "move": "moved",
    }
    parts = [f"{counts.get(k, 0)} {v}" for k, v in words.items() if counts.get(k) or k not in ("adopt", "move")]
    head = "Dry run complete (nothing persisted)" if dry_run else "Apply complete"
    return f"{head}: {', '.join(parts)}."
