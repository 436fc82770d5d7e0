"""The commands that plan and apply: validate, schema, plan, drift, apply, destroy, import, show, graph, force-unlock.

Plain functions with typer annotations; :mod:`planner.cli.app` registers them. Heavy modules are
imported inside them so ``flowplan --help`` starts fast.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from planner.cli.options import (
    AdoptOpt,
    AllowDestroyOpt,
    AutoApproveOpt,
    BranchOpt,
    CommentLimitOpt,
    EnableSchedulesOpt,
    FileOpt,
    FormatOpt,
    MaxPartsOpt,
    NoColorOpt,
    ParallelismOpt,
    SplitOpt,
    TargetOpt,
    VarFileOpt,
    VarOpt,
    check_format,
    manifest_options,
    print_err,
    print_out,
    render_plan,
    use_color,
)


def _split_markdown(plan: Any, fmt: str, directory: str, comment_limit: int, max_parts: int) -> str:
    """Write the parts and the full plan (stale parts of an earlier, longer plan removed); returns part 1."""
    from pathlib import Path

    from planner.cli.redact import scrub
    from planner.errors import FlowplanError
    from planner.render.markdown import render_markdown_full, render_markdown_parts

    if fmt != "markdown":
        raise FlowplanError("--split needs --format markdown")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("plan-[0-9][0-9][0-9].md"):
        stale.unlink()
    parts = render_markdown_parts(plan, limit=comment_limit, max_parts=max_parts)
    for number, text in enumerate(parts, start=1):
        (folder / f"plan-{number:03d}.md").write_text(scrub(text))
    (folder / "plan-full.md").write_text(scrub(render_markdown_full(plan)))
    print_err(
        f"Wrote {len(parts)} comment part(s) to {folder}/plan-001.md ... and the whole plan to {folder}/plan-full.md."
    )
    return str(parts[0])


# --------------------------------------------------------------------------- validate, schema


def validate(
    file: FileOpt = "flows.yaml",
    var: VarOpt = None,
    var_file: VarFileOpt = None,
    branch: BranchOpt = "prod",
    enable_schedules: EnableSchedulesOpt = False,
) -> int:
    """Check the manifest: structure, references, cron, time zones, step graphs, and each backend's compile checks."""
    from planner.cli.session import load
    from planner.cli.validating import check_backends

    session = load(manifest_options(file, var, var_file, branch, enable_schedules), open_backends=False)
    m = session.manifest
    check_backends(m, session.provenance)
    print_out(
        f"{file} is valid: project {m.project}, branch {m.branch}, {len(m.flows)} flow(s) on "
        f"{len(m.backends)} backend(s) ({', '.join(sorted(m.backends))}).\n"
    )
    return 0


def schema() -> int:
    """Print the manifest's JSON Schema (for yaml-language-server and other editors)."""
    from planner.manifest import json_schema

    print_out(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
    return 0


# --------------------------------------------------------------------------- plan


def plan(
    file: FileOpt = "flows.yaml",
    var: VarOpt = None,
    var_file: VarFileOpt = None,
    branch: BranchOpt = "prod",
    enable_schedules: EnableSchedulesOpt = False,
    target: TargetOpt = None,
    out: Annotated[str | None, typer.Option("--out", help="save the plan for `flowplan apply FILE` (secret!)")] = None,
    fmt: FormatOpt = "text",
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="exit 0 = no changes, 1 = error, 2 = changes")
    ] = False,
    destroy: Annotated[bool, typer.Option("--destroy", help="plan the removal of everything owned")] = False,
    allow_destroy: AllowDestroyOpt = False,
    adopt: AdoptOpt = False,
    no_color: NoColorOpt = False,
    split: SplitOpt = None,
    comment_limit: CommentLimitOpt = 65_535,
    max_parts: MaxPartsOpt = 5,
) -> int:
    """Show what apply would change. Reads live state; writes nothing and takes no lock."""
    from planner.building import PlanOptions
    from planner.cli.planfile import save_plan
    from planner.cli.planning import make_plan

    check_format(fmt)
    options = manifest_options(file, var, var_file, branch, enable_schedules)
    plan_options = PlanOptions(
        targets=tuple(target or ()),
        mode="destroy" if destroy else "normal",
        allow_destroy=allow_destroy,
        adopt=adopt,
    )
    if split and fmt != "markdown":
        from planner.errors import FlowplanError

        raise FlowplanError("--split needs --format markdown")
    _session, result = make_plan(options, plan_options=plan_options)
    if split:
        print_out(_split_markdown(result.plan, fmt, split, comment_limit, max_parts))
    else:
        print_out(render_plan(result.plan, fmt, use_color(no_color), comment_limit))
    if out:
        save_plan(out, result.plan, options, plan_options)
        print_err(f"Saved the plan to {out}. It holds sensitive values: keep it out of logs and artifacts you share.")
    if detailed_exitcode and (not result.plan.is_empty or result.plan.conflicts):
        return 2
    return 0


def drift(
    file: FileOpt = "flows.yaml",
    var: VarOpt = None,
    var_file: VarFileOpt = None,
    branch: BranchOpt = "prod",
    enable_schedules: EnableSchedulesOpt = False,
    target: TargetOpt = None,
    fmt: FormatOpt = "text",
) -> int:
    """Report what was changed outside flowplan. Writes nothing, takes no lock. Exit 0 in sync, 2 drift, 1 error."""
    from planner.building import PlanOptions, build_plan
    from planner.cli.session import load
    from planner.drift import drift_report
    from planner.render.drift import render_drift_json, render_drift_markdown, render_drift_text

    check_format(fmt)
    options = manifest_options(file, var, var_file, branch, enable_schedules)
    session = load(options)
    result = build_plan(
        session.manifest,
        session.backends,
        session.provenance,
        PlanOptions(targets=tuple(target or ()), mode="refresh-only"),
    )
    report = drift_report(result.plan)
    render = {"json": render_drift_json, "markdown": render_drift_markdown}.get(fmt, render_drift_text)
    print_out(render(report))
    return 0 if report["in_sync"] else 2


# --------------------------------------------------------------------------- apply, destroy


def apply(
    plan_file: Annotated[str | None, typer.Argument(help="a plan saved with `plan --out`", show_default=False)] = None,
    file: FileOpt = "flows.yaml",
    var: VarOpt = None,
    var_file: VarFileOpt = None,
    branch: BranchOpt = "prod",
    enable_schedules: EnableSchedulesOpt = False,
    target: TargetOpt = None,
    auto_approve: AutoApproveOpt = False,
    allow_destroy: AllowDestroyOpt = False,
    adopt: AdoptOpt = False,
    parallelism: ParallelismOpt = 10,
    dry_run: Annotated[
        str | None, typer.Option("--dry-run", help="server: send every write as a dry run; nothing persists")
    ] = None,
    no_color: NoColorOpt = False,
) -> int:
    """Make the deployed state match the manifest (or apply a saved plan exactly)."""
    from planner.building import PlanOptions
    from planner.cli.planning import apply_command

    if dry_run not in (None, "server"):
        from planner.errors import FlowplanError

        raise FlowplanError("--dry-run takes one value: server")
    return apply_command(
        plan_file=plan_file,
        options=manifest_options(file, var, var_file, branch, enable_schedules),
        plan_options=PlanOptions(targets=tuple(target or ()), allow_destroy=allow_destroy, adopt=adopt),
        auto_approve=auto_approve,
        parallelism=parallelism,
        dry_run=dry_run == "server",
        color=use_color(no_color),
    )


def destroy(
    file: FileOpt = "flows.yaml",
    var: VarOpt = None,
    var_file: VarFileOpt = None,
    branch: BranchOpt = "prod",
    target: TargetOpt = None,
    auto_approve: AutoApproveOpt = False,
    parallelism: ParallelismOpt = 10,
    no_color: NoColorOpt = False,
) -> int:
    """Remove everything flowplan owns for this project and branch (protected flows excepted: the plan stops)."""
    from planner.building import PlanOptions
    from planner.cli.planning import apply_command

    return apply_command(
        plan_file=None,
        options=manifest_options(file, var, var_file, branch, False),
        plan_options=PlanOptions(targets=tuple(target or ()), mode="destroy", allow_destroy=True),
        auto_approve=auto_approve,
        parallelism=parallelism,
        dry_run=False,
        color=use_color(no_color),
    )


def import_(
    address: Annotated[str, typer.Argument(help="the address flowplan would create, e.g. prod.CronWorkflow.ml/x")],
    from_name: Annotated[
        str | None, typer.Option("--from", help="the existing object's name, when it differs from the address's")
    ] = None,
    file: FileOpt = "flows.yaml",
    var: VarOpt = None,
    var_file: VarFileOpt = None,
    branch: BranchOpt = "prod",
    enable_schedules: EnableSchedulesOpt = False,
    auto_approve: AutoApproveOpt = False,
    no_color: NoColorOpt = False,
) -> int:
    """Take over an existing object (made by hand or by Metaflow) as the manifest's resource at ADDRESS.

    Without --from the object must sit at ADDRESS; flowplan stamps its markers on it and records it in
    the inventory (the plan shows the field diff first). With --from NAME the object is replaced by one
    at ADDRESS (schedules and triggers: the old one goes first, so a run never fires twice).
    """
    from planner.building import PlanOptions
    from planner.cli.planning import apply_command
    from planner.resources import Address

    try:
        Address.parse(address)
    except ValueError as exc:
        from planner.errors import FlowplanError

        raise FlowplanError(str(exc), hint="`flowplan plan --format json` lists the addresses") from None
    plan_options = PlanOptions(
        targets=(address,),
        imports=() if from_name else (address,),
        import_from=((address, from_name),) if from_name else (),
    )
    return apply_command(
        plan_file=None,
        options=manifest_options(file, var, var_file, branch, enable_schedules),
        plan_options=plan_options,
        auto_approve=auto_approve,
        parallelism=1,
        dry_run=False,
        color=use_color(no_color),
    )


# --------------------------------------------------------------------------- show, graph, force-unlock


def show(
    plan_file: Annotated[str, typer.Argument(help="a plan saved with `plan --out`")],
    fmt: FormatOpt = "text",
    no_color: NoColorOpt = False,
    split: SplitOpt = None,
    comment_limit: CommentLimitOpt = 65_535,
    max_parts: MaxPartsOpt = 5,
) -> int:
    """Render a saved plan (text, markdown or json; sensitive values hidden)."""
    from planner.cli.planfile import read_plan_file

    check_format(fmt)
    saved = read_plan_file(plan_file)
    if split:
        print_out(_split_markdown(saved.plan, fmt, split, comment_limit, max_parts))
    else:
        print_out(render_plan(saved.plan, fmt, use_color(no_color), comment_limit))
    return 0


def graph(
    file: FileOpt = "flows.yaml",
    var: VarOpt = None,
    var_file: VarFileOpt = None,
    branch: BranchOpt = "prod",
    enable_schedules: EnableSchedulesOpt = False,
    fmt: Annotated[str, typer.Option("--format", help="dot or mermaid")] = "dot",
    view: Annotated[
        str,
        typer.Option(
            "--view",
            help="apply-order (the planned changes and what must come first) or flows (the flows that change, "
            "with steps and triggers: the picture of the PR comment)",
        ),
    ] = "apply-order",
    all_flows: Annotated[
        bool, typer.Option("--all-flows", help="--view flows: draw every flow, changed or not")
    ] = False,
) -> int:
    """Print the plan as a graph: the apply order, or the flows that change (DOT or Mermaid)."""
    from planner.building import PlanOptions
    from planner.cli.planning import make_plan
    from planner.graph import to_dot
    from planner.render.graphs import apply_order_picture, flows_picture, to_mermaid
    from planner.render.graphs import to_dot as picture_dot
    from planner.render.json import plan_view
    from planner.resources import Address

    check_format(fmt, ("dot", "mermaid"))
    if view not in ("apply-order", "flows"):
        from planner.errors import FlowplanError

        raise FlowplanError(f"--view {view!r} is not one of apply-order, flows")
    options = manifest_options(file, var, var_file, branch, enable_schedules)
    _, result = make_plan(options, plan_options=PlanOptions(allow_destroy=True))
    if view == "flows":
        picture = flows_picture(plan_view(result.plan), all_flows=all_flows)
        print_out(to_mermaid(picture) if fmt == "mermaid" else picture_dot(picture))
        return 0
    order = result.order
    assert order is not None
    actions = {c.address: c.action for c in result.plan.changes}
    if fmt == "dot":
        print_out(to_dot(order, actions))
        return 0
    nodes = sorted(order.nodes(), key=Address.sort_key)
    edges = sorted(order.edges(), key=lambda e: (e[0].sort_key(), e[1].sort_key()))
    picture = apply_order_picture(
        [str(n) for n in nodes], [(str(a), str(b)) for a, b in edges], {str(a): x.value for a, x in actions.items()}
    )
    print_out(to_mermaid(picture))
    return 0


def force_unlock(
    file: FileOpt = "flows.yaml",
    var: VarOpt = None,
    var_file: VarFileOpt = None,
    branch: BranchOpt = "prod",
    backend: Annotated[str | None, typer.Option("--backend", help="only this backend")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
) -> int:
    """Remove a lock left by a dead apply (check that the holder is really gone first)."""
    from planner.cli.session import load
    from planner.contract import Scope

    session = load(manifest_options(file, var, var_file, branch, False), only=[backend] if backend else ())
    found = False
    for name, handle in sorted(session.backends.items()):
        lock = handle.lock(Scope(name, session.manifest.project, session.manifest.branch))
        holder = lock.current()
        if holder is None:
            print_err(f"{name}: not locked")
            continue
        found = True
        print_err(f"{name}: locked by {holder.describe()}")
        if not yes and not typer.confirm(f"Remove the lock on {name}?", default=False):
            print_err("left as it is")
            continue
        lock.force_unlock()
        print_err(f"{name}: lock removed")
    if not found:
        print_err("no locks held")
    return 0
