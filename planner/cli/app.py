"""The commands. Heavy modules are imported inside them so ``flowplan --help`` starts fast."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="flowplan",
    help=(
        "Terraform-style plan/apply for scheduled data and ML flows on Argo Workflows and AWS Step Functions.\n\n"
        "Examples:\n\n"
        "  flowplan validate                      check flows.yaml\n\n"
        "  flowplan plan                          show what would change\n\n"
        "  flowplan plan --out plan.bin           save a plan for review\n\n"
        "  flowplan apply plan.bin                apply exactly that plan (refused if stale)\n\n"
        "  flowplan apply --auto-approve          plan and apply in CI\n\n"
        "  flowplan plan --branch pr-42 --format markdown   a PR comment for a branch deployment\n\n"
        "Exit codes: 0 ok, 1 error, 2 changes (plan --detailed-exitcode) or drift (drift)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

FileOpt = Annotated[str, typer.Option("--file", "-f", help="the manifest", show_default=True)]
VarOpt = Annotated[list[str] | None, typer.Option("--var", help="set a var: KEY=VALUE (repeatable)")]
VarFileOpt = Annotated[list[str] | None, typer.Option("--var-file", help="YAML file of var values (repeatable)")]
BranchOpt = Annotated[
    str, typer.Option("--branch", help="deployment branch, as Metaflow's @project (prod = production)")
]
EnableSchedulesOpt = Annotated[
    bool, typer.Option("--enable-schedules", help="let schedules fire on a non-prod branch (suspended by default)")
]
TargetOpt = Annotated[
    list[str] | None, typer.Option("--target", help="limit to a flow name or a resource address (repeatable)")
]
FormatOpt = Annotated[str, typer.Option("--format", help="text, markdown or json")]
NoColorOpt = Annotated[bool, typer.Option("--no-color", help="no ANSI colours (also: NO_COLOR=1)")]
AllowDestroyOpt = Annotated[
    bool, typer.Option("--allow-destroy", help="allow deleting more than 10 objects or everything a backend holds")
]
AdoptOpt = Annotated[
    bool, typer.Option("--adopt", help="take over unowned objects that already sit at the manifest's names")
]
ParallelismOpt = Annotated[int, typer.Option("--parallelism", min=1, max=64, help="writes in flight per wave")]


def _options(file: str, var: list[str] | None, var_file: list[str] | None, branch: str, enable: bool) -> Any:
    from planner.cli.session import ManifestOptions, parse_vars

    return ManifestOptions(file, parse_vars(var or []), tuple(var_file or []), branch, enable)


def _color(no_color: bool) -> bool:
    return not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()


def _out(text: str) -> None:
    from planner.cli.redact import scrub

    sys.stdout.write(scrub(text))
    sys.stdout.flush()


def _err(text: str) -> None:
    from planner.cli.redact import scrub

    sys.stderr.write(scrub(text) + "\n")
    sys.stderr.flush()


def _check_format(fmt: str, allowed: tuple[str, ...] = ("text", "markdown", "json")) -> None:
    if fmt not in allowed:
        from planner.errors import FlowplanError

        raise FlowplanError(f"--format {fmt!r} is not one of {', '.join(allowed)}")


def _render(plan: Any, fmt: str, color: bool, comment_limit: int = 65_535) -> str:
    from planner.render import render_json, render_markdown, render_text

    if fmt == "json":
        return str(render_json(plan))
    if fmt == "markdown":
        return str(render_markdown(plan, limit=comment_limit))
    return str(render_text(plan, color=color))


SplitOpt = Annotated[
    str | None,
    typer.Option(
        "--split",
        help="markdown: write comment-sized parts DIR/plan-001.md ... and the whole plan to DIR/plan-full.md",
        show_default=False,
    ),
]
CommentLimitOpt = Annotated[
    int, typer.Option("--comment-limit", min=2_000, help="markdown: characters per comment (GitHub: 65535)")
]
MaxPartsOpt = Annotated[
    int, typer.Option("--max-parts", min=1, max=100, help="markdown --split: parts at most (destroys never cut)")
]


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
    _err(f"Wrote {len(parts)} comment part(s) to {folder}/plan-001.md ... and the whole plan to {folder}/plan-full.md.")
    return str(parts[0])


# --------------------------------------------------------------------------- validate, schema


@app.command()
def validate(
    file: FileOpt = "flows.yaml",
    var: VarOpt = None,
    var_file: VarFileOpt = None,
    branch: BranchOpt = "prod",
    enable_schedules: EnableSchedulesOpt = False,
) -> int:
    """Check the manifest: structure, references, cron, time zones, step graphs. Reports every problem."""
    from planner.cli.session import load

    session = load(_options(file, var, var_file, branch, enable_schedules), open_backends=False)
    m = session.manifest
    _out(
        f"{file} is valid: project {m.project}, branch {m.branch}, {len(m.flows)} flow(s) on "
        f"{len(m.backends)} backend(s) ({', '.join(sorted(m.backends))}).\n"
    )
    return 0


@app.command()
def schema() -> int:
    """Print the manifest's JSON Schema (for yaml-language-server and other editors)."""
    from planner.manifest import json_schema

    _out(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
    return 0


# --------------------------------------------------------------------------- plan


@app.command()
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
    from planner.builder import PlanOptions
    from planner.cli.planning import make_plan, save_plan

    _check_format(fmt)
    options = _options(file, var, var_file, branch, enable_schedules)
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
        _out(_split_markdown(result.plan, fmt, split, comment_limit, max_parts))
    else:
        _out(_render(result.plan, fmt, _color(no_color), comment_limit))
    if out:
        save_plan(out, result.plan, options, plan_options)
        _err(f"Saved the plan to {out}. It holds sensitive values: keep it out of logs and artifacts you share.")
    if detailed_exitcode and (not result.plan.is_empty or result.plan.conflicts):
        return 2
    return 0


@app.command()
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
    from planner.builder import PlanOptions, build_plan
    from planner.cli.session import load
    from planner.drift import drift_report
    from planner.render.drift import render_drift_json, render_drift_markdown, render_drift_text

    _check_format(fmt)
    options = _options(file, var, var_file, branch, enable_schedules)
    session = load(options)
    result = build_plan(
        session.manifest,
        session.backends,
        session.provenance,
        PlanOptions(targets=tuple(target or ()), mode="refresh-only"),
    )
    report = drift_report(result.plan)
    render = {"json": render_drift_json, "markdown": render_drift_markdown}.get(fmt, render_drift_text)
    _out(render(report))
    return 0 if report["in_sync"] else 2


# --------------------------------------------------------------------------- apply, destroy


@app.command()
def apply(
    plan_file: Annotated[str | None, typer.Argument(help="a plan saved with `plan --out`", show_default=False)] = None,
    file: FileOpt = "flows.yaml",
    var: VarOpt = None,
    var_file: VarFileOpt = None,
    branch: BranchOpt = "prod",
    enable_schedules: EnableSchedulesOpt = False,
    target: TargetOpt = None,
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="do not ask for confirmation (CI)")] = False,
    allow_destroy: AllowDestroyOpt = False,
    adopt: AdoptOpt = False,
    parallelism: ParallelismOpt = 10,
    dry_run: Annotated[
        str | None, typer.Option("--dry-run", help="server: send every write as a dry run; nothing persists")
    ] = None,
    no_color: NoColorOpt = False,
) -> int:
    """Make the deployed state match the manifest (or apply a saved plan exactly)."""
    from planner.builder import PlanOptions
    from planner.cli.planning import apply_command

    if dry_run not in (None, "server"):
        from planner.errors import FlowplanError

        raise FlowplanError("--dry-run takes one value: server")
    return apply_command(
        plan_file=plan_file,
        options=_options(file, var, var_file, branch, enable_schedules),
        plan_options=PlanOptions(targets=tuple(target or ()), allow_destroy=allow_destroy, adopt=adopt),
        auto_approve=auto_approve,
        parallelism=parallelism,
        dry_run=dry_run == "server",
        color=_color(no_color),
    )


@app.command()
def destroy(
    file: FileOpt = "flows.yaml",
    var: VarOpt = None,
    var_file: VarFileOpt = None,
    branch: BranchOpt = "prod",
    target: TargetOpt = None,
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="do not ask for confirmation (CI)")] = False,
    parallelism: ParallelismOpt = 10,
    no_color: NoColorOpt = False,
) -> int:
    """Remove everything flowplan owns for this project and branch (protected flows excepted: the plan stops)."""
    from planner.builder import PlanOptions
    from planner.cli.planning import apply_command

    return apply_command(
        plan_file=None,
        options=_options(file, var, var_file, branch, False),
        plan_options=PlanOptions(targets=tuple(target or ()), mode="destroy", allow_destroy=True),
        auto_approve=auto_approve,
        parallelism=parallelism,
        dry_run=False,
        color=_color(no_color),
    )


@app.command("import")
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
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="do not ask for confirmation (CI)")] = False,
    no_color: NoColorOpt = False,
) -> int:
    """Take over an existing object (made by hand or by Metaflow) as the manifest's resource at ADDRESS.

    Without --from the object must sit at ADDRESS; flowplan stamps its markers on it and records it in
    the inventory (the plan shows the field diff first). With --from NAME the object is replaced by one
    at ADDRESS (schedules and triggers: the old one goes first, so a run never fires twice).
    """
    from planner.builder import PlanOptions
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
        options=_options(file, var, var_file, branch, enable_schedules),
        plan_options=plan_options,
        auto_approve=auto_approve,
        parallelism=1,
        dry_run=False,
        color=_color(no_color),
    )


# --------------------------------------------------------------------------- show, graph, force-unlock


@app.command()
def show(
    plan_file: Annotated[str, typer.Argument(help="a plan saved with `plan --out`")],
    fmt: FormatOpt = "text",
    no_color: NoColorOpt = False,
    split: SplitOpt = None,
    comment_limit: CommentLimitOpt = 65_535,
    max_parts: MaxPartsOpt = 5,
) -> int:
    """Render a saved plan (text, markdown or json; sensitive values hidden)."""
    from planner.cli.planning import read_plan_file

    _check_format(fmt)
    saved = read_plan_file(plan_file)
    if split:
        _out(_split_markdown(saved.plan, fmt, split, comment_limit, max_parts))
    else:
        _out(_render(saved.plan, fmt, _color(no_color), comment_limit))
    return 0


@app.command()
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
    from planner.builder import PlanOptions
    from planner.cli.planning import make_plan
    from planner.graph import to_dot
    from planner.render.graphs import apply_order_picture, flows_picture, to_mermaid
    from planner.render.graphs import to_dot as picture_dot
    from planner.render.json import plan_view
    from planner.resources import Address

    _check_format(fmt, ("dot", "mermaid"))
    if view not in ("apply-order", "flows"):
        from planner.errors import FlowplanError

        raise FlowplanError(f"--view {view!r} is not one of apply-order, flows")
    options = _options(file, var, var_file, branch, enable_schedules)
    _, result = make_plan(options, plan_options=PlanOptions(allow_destroy=True))
    if view == "flows":
        picture = flows_picture(plan_view(result.plan), all_flows=all_flows)
        _out(to_mermaid(picture) if fmt == "mermaid" else picture_dot(picture))
        return 0
    order = result.order
    assert order is not None
    actions = {c.address: c.action for c in result.plan.changes}
    if fmt == "dot":
        _out(to_dot(order, actions))
        return 0
    nodes = sorted(order.nodes(), key=Address.sort_key)
    edges = sorted(order.edges(), key=lambda e: (e[0].sort_key(), e[1].sort_key()))
    picture = apply_order_picture(
        [str(n) for n in nodes], [(str(a), str(b)) for a, b in edges], {str(a): x.value for a, x in actions.items()}
    )
    _out(to_mermaid(picture))
    return 0


@app.command("force-unlock")
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

    session = load(_options(file, var, var_file, branch, False), only=[backend] if backend else ())
    found = False
    for name, handle in sorted(session.backends.items()):
        lock = handle.lock(Scope(name, session.manifest.project, session.manifest.branch))
        holder = lock.current()
        if holder is None:
            _err(f"{name}: not locked")
            continue
        found = True
        _err(f"{name}: locked by {holder.describe()}")
        if not yes and not typer.confirm(f"Remove the lock on {name}?", default=False):
            _err("left as it is")
            continue
        lock.force_unlock()
        _err(f"{name}: lock removed")
    if not found:
        _err("no locks held")
    return 0


from planner.cli import operate as _operate  # noqa: F401,E402
from planner.cli.github import github_app as _github_app  # noqa: E402

app.add_typer(_github_app, name="github")
