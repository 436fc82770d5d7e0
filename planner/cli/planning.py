"""Plan and apply: the orchestration behind ``plan``, ``apply``, ``destroy`` and ``import``.

``apply`` never writes what the person did not see: it plans without a lock,
shows the plan, asks, then hands it to the apply transaction
(:class:`planner.applying.Transaction`), which takes the locks, plans again
and refuses if the change set moved in between. ``apply FILE`` compares the
saved plan with a fresh one before taking any lock, so a stale plan writes
nothing at all.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from planner.applying import ApplyOptions, Repaired, Seen, Transaction, raise_for_outcome
from planner.building import PlanOptions, PlanResult, build_plan
from planner.cli.planfile import SavedPlan, read_plan_file
from planner.cli.progress import Progress
from planner.cli.session import ManifestOptions, Session, load
from planner.errors import FlowplanError, StalePlanError
from planner.plan import Plan
from planner.render import render_text


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


def session_transaction(
    session: Session, first: PlanResult, plan_options: PlanOptions, options: ApplyOptions
) -> Transaction:
    """The apply transaction of a CLI session: it plans again from the manifest ``first`` was compiled from."""

    def replan() -> PlanResult:
        return build_plan(session.manifest, session.backends, session.provenance, plan_options, compiled=first.compiled)

    return Transaction(session.backends, session.provenance, replan, options, watcher=progress_watcher)


def progress_watcher(plan: Plan, dry_run: bool) -> Progress:
    return Progress(len(plan.changes), dry_run=dry_run)


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
    if plan_file is not None:
        saved = read_plan_file(plan_file)
        _refuse_other_options(plan_file, saved, options, plan_options)
        plan_options = saved.plan_options
        session, first = make_plan(saved.options, plan_options=plan_options)
        seen = Seen(saved.plan, saved_as=f"the saved plan {plan_file}")
    else:
        session, first = make_plan(options, plan_options=plan_options)
        sys.stdout.write(render_text(first.plan, color=color))
        seen = Seen(first.plan)
    destroy = plan_options.mode == "destroy"
    apply_options = ApplyOptions(parallelism=parallelism, dry_run=dry_run, operation="destroy" if destroy else "apply")
    transaction = session_transaction(session, first, plan_options, apply_options)
    ask = None if plan_file is not None or auto_approve or dry_run else (lambda _plan: _confirm(destroy))
    outcome = transaction.apply(first, seen, ask)
    if outcome.ending == "nothing":
        sys.stdout.write("Nothing to apply.\n" if plan_file else "")
        if not dry_run and transaction.needs_repair(first):
            _report_repairs(transaction.repair(first))
        return 1 if first.plan.conflicts else 0
    if outcome.ending == "cancelled":
        sys.stderr.write("Apply cancelled; nothing was written.\n")
        return 1
    assert outcome.plan is not None
    sys.stdout.write(_outcome_summary(outcome.plan, outcome.succeeded, dry_run) + "\n")
    raise_for_outcome(outcome)
    if outcome.plan.conflicts:
        sys.stderr.write(
            f"{len(outcome.plan.conflicts)} conflict(s) were left untouched; see the plan. Exit 1 until resolved.\n"
        )
        return 1
    return 0


def _report_repairs(repaired: Repaired) -> None:
    """Tell what an empty apply tidied (a killed apply's unconfirmed intents, temporary files)."""
    for name, removed in sorted(repaired.leftovers.items()):
        sys.stderr.write(f"Removed {len(removed)} temporary file(s) an interrupted apply left on {name}.\n")
    if repaired.inventories:
        count = sum(repaired.inventories.values())
        sys.stderr.write(
            f"Recorded the inventory of {', '.join(sorted(repaired.inventories))} again ({count} entries): an earlier "
            "apply stopped before confirming its last writes.\n"
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
