"""Commands for operating what is deployed: ``status``, ``history``, ``rollback``, ``branches``, ``run``.

Plain functions with typer annotations, registered by :mod:`planner.cli.app`. The logic lives in
pure modules (:mod:`planner.status`, :mod:`planner.history`, :mod:`planner.rollback`,
:mod:`planner.branches`); what a backend must read or start goes through its
:class:`~planner.contract.Operator`; ``rollback`` and ``branches --prune`` write through the apply
transaction (:mod:`planner.applying`). Heavy modules are imported inside the commands, so
``flowplan --help`` stays fast.

Exit codes: ``status`` exits 1 when a flow is missing, its last finished run failed, its trigger
plumbing is broken or runs could not be read (for alerting); the others exit 1 on any error.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from planner.cli.options import (
    AllowDestroyOpt,
    AutoApproveOpt,
    BackendOpt,
    BranchOpt,
    EnableSchedulesOpt,
    FileOpt,
    FormatOpt,
    NoColorOpt,
    ParallelismOpt,
    VarFileOpt,
    VarOpt,
    check_format,
    manifest_options,
    print_err,
    print_out,
    render_plan,
    use_color,
)

if TYPE_CHECKING:
    from planner.cli.session import Session
    from planner.contract import Backend, FlowTarget, Revision, Scope
    from planner.resources import Provenance
    from planner.rollback import RollbackBackend

T = TypeVar("T")
R = TypeVar("R")


def _in_parallel(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``[fn(x) for x in items]``, one thread per backend (their reads are independent)."""
    if len(items) <= 1:
        return [fn(x) for x in items]
    with concurrent.futures.ThreadPoolExecutor(len(items), thread_name_prefix="flowplan-operate") as pool:
        return list(pool.map(fn, items))


def _scope(session: Session, backend: str, branch: str | None = None) -> Scope:
    from planner.contract import Scope

    return Scope(backend, session.manifest.project, branch or session.manifest.branch)


def _backend_names(session: Session, only: str | None) -> list[str]:
    from planner.errors import PlanError

    if only is None:
        return sorted(session.backends)
    if only not in session.backends:
        raise PlanError(
            f"no backend named {only!r} in {session.options.file}",
            hint="backends: " + ", ".join(sorted(session.backends)),
        )
    return [only]


def _check_flows(session: Session, flows: Sequence[str]) -> None:
    from planner.errors import PlanError

    unknown = [f for f in flows if f not in session.manifest.flows]
    if unknown:
        raise PlanError(
            f"no flow named {', '.join(repr(f) for f in unknown)} in {session.options.file}",
            hint="flows: " + ", ".join(sorted(session.manifest.flows)),
        )


def _targets(session: Session, desired: Mapping[Any, Any], names: Sequence[str]) -> dict[str, list[FlowTarget]]:
    """Per backend: the flows asked about, each with its compiled resources and parameter defaults."""
    from planner.contract import FlowTarget

    result: dict[str, list[FlowTarget]] = {}
    for name in names:
        flow = session.manifest.flows[name]
        resources = tuple(sorted((r for r in desired.values() if r.flow == name), key=lambda r: r.address.sort_key()))
        parameters = {p: spec.default_text for p, spec in flow.parameters.items()}
        result.setdefault(flow.backend, []).append(FlowTarget(name, resources, parameters))
    return result


# --------------------------------------------------------------------------- status


def status(
    flows: Annotated[
        list[str] | None, typer.Argument(help="flows to report (default: all)", show_default=False)
    ] = None,
    file: FileOpt = "flows.yaml",
    var: VarOpt = None,
    var_file: VarFileOpt = None,
    branch: BranchOpt = "prod",
    enable_schedules: EnableSchedulesOpt = False,
    runs: Annotated[int, typer.Option("--runs", min=0, max=100, help="last runs shown per flow")] = 5,
    fmt: FormatOpt = "text",
) -> int:
    """Per flow: deployed? in sync? schedule and next fire times, trigger plumbing, last runs.

    Exit 1 when a flow is missing, its last finished run failed, its trigger plumbing is broken or
    its runs cannot be read (so a cron job can alert on it); 0 otherwise. Writes nothing.
    """
    from planner.building import PlanOptions, build_plan
    from planner.cli.session import load
    from planner.contract import NotSupported, operator_of
    from planner.errors import FlowplanError
    from planner.status import render_status_markdown, render_status_text, status_view

    check_format(fmt)
    session = load(manifest_options(file, var, var_file, branch, enable_schedules))
    names = list(flows or ()) or sorted(session.manifest.flows)
    _check_flows(session, names)
    result = build_plan(session.manifest, session.backends, session.provenance, PlanOptions(mode="refresh-only"))
    targets = _targets(session, result.desired, names)
    found_runs: dict[str, dict[str, Any]] = {}
    found_health: dict[str, dict[str, Any]] = {}
    runs_notes: dict[str, str] = {}
    health_notes: dict[str, str] = {}
    problems: list[str] = []

    def ask(backend: str) -> None:
        scope = _scope(session, backend)
        try:
            operator = operator_of(session.backends[backend])
        except NotSupported as exc:
            runs_notes[backend] = health_notes[backend] = exc.message
            return
        try:
            found_health[backend] = operator.trigger_health(scope, targets[backend], result.views[backend].live)
        except NotSupported as exc:
            health_notes[backend] = exc.message
        except FlowplanError as exc:
            health_notes[backend] = f"could not be checked: {exc.message}"
            problems.append(f"{backend}: trigger plumbing could not be read: {exc.message}")
        if runs == 0:
            runs_notes[backend] = "not asked for (--runs 0)"
            return
        try:
            found_runs[backend] = operator.runs(scope, targets[backend], runs)
        except NotSupported as exc:
            runs_notes[backend] = exc.message
        except FlowplanError as exc:
            runs_notes[backend] = f"could not be read: {exc.message}"
            problems.append(f"{backend}: runs could not be read: {exc.message}")

    _in_parallel(ask, sorted(targets))
    view = status_view(
        session.manifest,
        result,
        flows=names,
        runs=found_runs,
        runs_notes=runs_notes,
        health=found_health,
        health_notes=health_notes,
        problems=sorted(problems),
        now=datetime.datetime.now(datetime.UTC),
        limit=runs,
    )
    if fmt == "json":
        print_out(json.dumps(view, indent=2, sort_keys=True) + "\n")
    elif fmt == "markdown":
        print_out(render_status_markdown(view))
    else:
        print_out(render_status_text(view))
    return 1 if view["alerts"] else 0


# --------------------------------------------------------------------------- history


def history(
    flow: Annotated[
        str | None, typer.Argument(help="only revisions that changed this flow", show_default=False)
    ] = None,
    file: FileOpt = "flows.yaml",
    var: VarOpt = None,
    var_file: VarFileOpt = None,
    branch: BranchOpt = "prod",
    backend: BackendOpt = None,
    fmt: FormatOpt = "text",
) -> int:
    """List what was applied: revision, time, who (user or CI identity), commit, manifest digest, changes.

    Revisions are numbered per backend; `flowplan rollback --to N` returns to one of the last 10.
    Reads only the inventories.
    """
    from planner.cli.session import load
    from planner.contract import CompileContext
    from planner.errors import ManifestError
    from planner.history import history_view, render_history_markdown, render_history_text

    check_format(fmt)
    session = load(manifest_options(file, var, var_file, branch, False))
    if flow is not None:
        _check_flows(session, [flow])
    names = _backend_names(session, backend)
    states = dict(
        zip(
            names,
            _in_parallel(lambda n: session.backends[n].inventory(_scope(session, n)).load(), names),
            strict=True,
        )
    )
    owners: dict[str, str] = {}
    if flow is not None:
        for name in names:
            handle = session.backends[name]
            try:
                compiled = handle.compiler().compile(CompileContext(session.manifest, handle.spec, session.provenance))
            except ManifestError:
                continue
            owners.update({str(r.address): r.flow for r in compiled if r.flow})
    view = history_view(
        states,
        project=session.manifest.project,
        branch=session.manifest.branch,
        flow=flow,
        flows_by_address=owners,
    )
    if fmt == "json":
        print_out(json.dumps(view, indent=2, sort_keys=True) + "\n")
    elif fmt == "markdown":
        print_out(render_history_markdown(view))
    else:
        print_out(render_history_text(view))
    return 0


# --------------------------------------------------------------------------- rollback


def _confirm(question: str) -> bool:
    from planner.errors import FlowplanError

    if not sys.stdin.isatty():
        raise FlowplanError(
            f"{question.rstrip('?')} needs confirmation, and there is no terminal to ask on",
            hint="pass --auto-approve in CI",
        )
    sys.stdout.write(f"\n{question} Only 'yes' is accepted: ")
    sys.stdout.flush()
    return sys.stdin.readline().strip() == "yes"


def rollback(
    flows: Annotated[
        list[str] | None, typer.Argument(help="only these flows (default: everything)", show_default=False)
    ] = None,
    to: Annotated[int, typer.Option("--to", help="the revision to return to (see `flowplan history`)")] = 0,
    file: FileOpt = "flows.yaml",
    var: VarOpt = None,
    var_file: VarFileOpt = None,
    branch: BranchOpt = "prod",
    backend: BackendOpt = None,
    auto_approve: AutoApproveOpt = False,
    plan_only: Annotated[bool, typer.Option("--plan-only", help="show the rollback plan; change nothing")] = False,
    allow_destroy: AllowDestroyOpt = False,
    parallelism: ParallelismOpt = 10,
    fmt: FormatOpt = "text",
    no_color: NoColorOpt = False,
) -> int:
    """Return to a recorded revision: plan it (a normal, reviewable plan with the usual guards), then apply.

    The revision's applied objects are the desired state; sensitive values (recorded as hashes)
    are taken from the manifest or the deployed objects when their hash matches, else the rollback
    refuses. On Step Functions the `live` alias moves back to the version published for the
    revision. The rollback is recorded as a new revision.
    """
    from planner.applying import ApplyOptions, Seen, Transaction, raise_for_outcome
    from planner.building import PlanOptions, PlanResult, build_plan
    from planner.cli.planning import progress_watcher
    from planner.cli.session import load
    from planner.errors import FlowplanError
    from planner.history import find_revision

    check_format(fmt)
    if to <= 0:
        raise FlowplanError("rollback needs --to REVISION (a number from `flowplan history`)")
    session = load(manifest_options(file, var, var_file, branch, False))
    names = _backend_names(session, backend)
    if len(names) > 1:
        raise FlowplanError(
            f"the manifest has {len(names)} backends and revisions are numbered per backend",
            hint="name one: --backend " + " | --backend ".join(names),
        )
    name = names[0]
    state = session.backends[name].inventory(_scope(session, name)).load()
    revision = find_revision(state, to, name)
    wrapped, provenance = _rollback_backend(session, name, revision)
    backends: dict[str, Backend] = {name: wrapped}
    plan_options = PlanOptions(targets=tuple(flows or ()), allow_destroy=allow_destroy)

    def replan() -> PlanResult:
        return build_plan(session.manifest, backends, provenance, plan_options)

    result = replan()
    later = [r.number for r in state.revisions if r.number > revision.number]
    if fmt == "json":
        document = {
            "rollback": _rollback_json(revision, name, later),
            "plan": json.loads(render_plan(result.plan, fmt, False)),
        }
        print_out(json.dumps(document, indent=2, sort_keys=True) + "\n")
    else:
        head = _rollback_head(session, name, revision, later, flows)
        print_out(head + ".\n\n" + render_plan(result.plan, fmt, use_color(no_color)))
    if plan_only:
        return 0
    options = ApplyOptions(parallelism=parallelism, operation="rollback")
    transaction = Transaction(backends, provenance, replan, options, watcher=progress_watcher)
    question = f"Roll back to revision {revision.number}?"
    ask = None if auto_approve else (lambda _plan: _confirm(question))
    outcome = transaction.apply(result, Seen(result.plan, "the rollback plan shown"), ask)
    if outcome.ending == "nothing":
        print_err(f"Nothing to roll back: what is deployed already matches revision {revision.number}.")
        return 1 if result.plan.conflicts else 0
    if outcome.ending == "cancelled":
        print_err("Rollback cancelled; nothing was written.")
        return 1
    print_err(
        f"Rollback complete: {len(outcome.succeeded)} change(s) applied; recorded as revision {outcome.revision}."
    )
    for machine, version in wrapped.restored():
        print_err(f"  {machine}: the live alias runs {version} again")
    raise_for_outcome(outcome)
    return 1 if outcome.plan is not None and outcome.plan.conflicts else 0


def _rollback_backend(session: Session, name: str, revision: Revision) -> tuple[RollbackBackend, Provenance]:
    """The backend whose desired state is ``revision``, and the provenance its objects are stamped with."""
    from planner import __version__
    from planner.contract import CompileContext, NotSupported, Resource, RollbackWriter, operator_of
    from planner.errors import ManifestError
    from planner.resources import Address, Provenance
    from planner.rollback import RollbackBackend, restore_resources

    handle = session.backends[name]
    scope = _scope(session, name)
    provenance = Provenance(__version__, revision.manifest_digest, revision.git_commit)
    try:
        current = handle.compiler().compile(CompileContext(session.manifest, handle.spec, session.provenance))
    except ManifestError:
        current = []

    def live_bodies(addresses: Sequence[Address]) -> dict[Address, dict[str, Any]]:
        found = handle.reader().read(scope, [Resource(a, {}) for a in addresses])
        return {a: dict(found.owned[a].body) for a in addresses if a in found.owned}

    resources = restore_resources(revision, name, current, provenance, live_bodies)
    _remember_secrets(resources)
    try:
        operator = operator_of(handle)
    except NotSupported:
        return RollbackBackend(handle, resources), provenance

    def rollback_writer(dry_run: bool) -> RollbackWriter | None:
        return operator.rollback_writer(scope, dry_run)

    return RollbackBackend(handle, resources, rollback_writer), provenance


def _rollback_head(
    session: Session, name: str, revision: Revision, later: Sequence[int], flows: Sequence[str] | None
) -> str:
    """The first line of a rollback: which revision, who applied it, what it undoes."""
    head = (
        f"Rollback of backend {name} (project {session.manifest.project}, branch {session.manifest.branch}) to "
        f"revision {revision.number}: applied {revision.time} by {revision.who}, commit "
        f"{(revision.git_commit or '-')[:12]}, manifest {revision.manifest_digest[:12]}"
    )
    if later:
        head += f"; undoes revision{'s' if len(later) > 1 else ''} {', '.join(map(str, later))}"
    if flows:
        head += f"; only flows {', '.join(flows)}"
    return head


def _remember_secrets(resources: Sequence[Any]) -> None:
    """Sensitive values a rollback restored (possibly read from a live object) are scrubbed from all output."""
    from planner.cli.redact import SECRETS
    from planner.resources import get_pointer

    for resource in resources:
        for pointer in resource.sensitive_paths:
            value = get_pointer(resource.body, pointer, None)
            if isinstance(value, str) and value:
                SECRETS.add(value)


def _rollback_json(revision: Any, backend: str, later: Sequence[int]) -> dict[str, Any]:
    return {
        "backend": backend,
        "to": revision.number,
        "time": revision.time,
        "who": revision.who,
        "git_commit": revision.git_commit,
        "manifest_digest": revision.manifest_digest,
        "undoes": list(later),
    }


# --------------------------------------------------------------------------- branches


def branches(
    file: FileOpt = "flows.yaml",
    var: VarOpt = None,
    var_file: VarFileOpt = None,
    backend: BackendOpt = None,
    fmt: FormatOpt = "text",
    prune: Annotated[
        bool, typer.Option("--prune", help="destroy branch deployments older than --older-than (never prod)")
    ] = False,
    older_than: Annotated[
        str | None, typer.Option("--older-than", help="with --prune: last apply older than this (90m, 36h, 14d, 2w)")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="with --prune: list what would go; destroy nothing")
    ] = False,
    auto_approve: AutoApproveOpt = False,
    parallelism: ParallelismOpt = 10,
    no_color: NoColorOpt = False,
) -> int:
    """List every branch deployment of the project on each backend: last apply, commit, age.

    With --prune --older-than 14d, destroys the branch deployments whose last apply (on every
    backend that has them) is older than that, as `flowplan destroy --branch NAME` would, one
    branch at a time. Production (prod) is never pruned. For a cleanup job after merged pull requests.
    """
    from planner.branches import PRODUCTION, branches_view, parse_age, render_branches_markdown, render_branches_text
    from planner.cli.session import load
    from planner.contract import NotSupported, operator_of
    from planner.errors import FlowplanError

    check_format(fmt)
    if (older_than or dry_run) and not prune:
        raise FlowplanError("--older-than and --dry-run go with --prune")
    if prune and older_than is None:
        raise FlowplanError("--prune needs --older-than (for example --older-than 14d)")
    age = parse_age(older_than) if older_than else None
    session = load(manifest_options(file, var, var_file, PRODUCTION, False))
    names = _backend_names(session, backend)
    notes: dict[str, str] = {}

    def listing(name: str) -> list[Any]:
        try:
            return operator_of(session.backends[name]).branches(session.manifest.project)
        except NotSupported as exc:
            notes[name] = exc.message
            return []

    infos = dict(zip(names, _in_parallel(listing, names), strict=True))
    now = datetime.datetime.now(datetime.UTC)
    view = branches_view(infos, project=session.manifest.project, now=now, notes=notes)
    if not prune:
        if fmt == "json":
            print_out(json.dumps(view, indent=2, sort_keys=True) + "\n")
        elif fmt == "markdown":
            print_out(render_branches_markdown(view))
        else:
            print_out(render_branches_text(view))
        return 0
    assert age is not None and older_than is not None
    return _prune(session, view, age, older_than, fmt, dry_run, auto_approve, parallelism, use_color(no_color))


def _prune(
    session: Session,
    view: dict[str, Any],
    age: datetime.timedelta,
    older_than: str,
    fmt: str,
    dry_run: bool,
    auto_approve: bool,
    parallelism: int,
    color: bool,
) -> int:
    """Destroy each branch deployment stale everywhere it is deployed, as ``flowplan destroy --branch`` does."""
    from planner.branches import PRODUCTION, prune_candidates, render_branches_text
    from planner.errors import FlowplanError

    stale = prune_candidates(view, age)
    # A branch goes only when it is stale everywhere it is deployed: destroy removes it from every backend.
    fresh = {b for rows in view["backends"].values() for row in rows if (b := row["branch"]) and _young(row, age)}
    branches_to_go = sorted({b for _, b in stale} - fresh - {PRODUCTION})
    report: dict[str, Any] = {"older_than": older_than, "pruned": [], "kept": [], "failed": {}}
    print_err(
        f"{len(branches_to_go)} branch deployment(s) with no apply for {older_than}: "
        + (", ".join(branches_to_go) or "none")
    )
    if dry_run or not branches_to_go:
        report["kept"] = branches_to_go if dry_run else []
        if fmt == "json":
            print_out(json.dumps({"branches": view, "prune": report}, indent=2, sort_keys=True) + "\n")
        else:
            print_out(render_branches_text(view))
        return 0
    if not auto_approve and not sys.stdin.isatty():
        raise FlowplanError(
            "pruning branch deployments needs confirmation, and there is no terminal to ask on",
            hint="pass --auto-approve in a cleanup job (production is never pruned), or --dry-run to list them",
        )
    for name in branches_to_go:
        _destroy_branch(session, name, auto_approve, parallelism, color, report)
    if fmt == "json":
        print_out(json.dumps({"branches": view, "prune": report}, indent=2, sort_keys=True) + "\n")
    print_err(
        f"Pruned {len(report['pruned'])} branch deployment(s)"
        + (f"; {len(report['failed'])} failed: {', '.join(report['failed'])}" if report["failed"] else "")
        + "."
    )
    return 1 if report["failed"] or report["kept"] else 0


def _destroy_branch(
    session: Session, name: str, auto_approve: bool, parallelism: int, color: bool, report: dict[str, Any]
) -> None:
    """``flowplan destroy --branch NAME`` (through the apply transaction); the result goes into ``report``."""
    from planner.building import PlanOptions
    from planner.cli.planning import apply_command
    from planner.cli.session import ManifestOptions
    from planner.errors import FlowplanError

    options = ManifestOptions(session.options.file, session.options.cli_vars, session.options.var_files, name)
    print_err(f"\nDestroying branch deployment {name}:")
    try:
        code = apply_command(
            plan_file=None,
            options=options,
            plan_options=PlanOptions(mode="destroy", allow_destroy=True),
            auto_approve=auto_approve,
            parallelism=parallelism,
            dry_run=False,
            color=color,
        )
    except FlowplanError as exc:
        report["failed"][name] = exc.render()
        print_err(f"Branch {name} was not (fully) destroyed: {exc.render()}")
        return
    (report["pruned"] if code == 0 else report["kept"]).append(name)


def _young(row: Mapping[str, Any], age: datetime.timedelta) -> bool:
    """A deployment applied within ``age`` (or of unknown age) keeps its branch alive."""
    return row["age_seconds"] is None or row["age_seconds"] <= age.total_seconds()


# --------------------------------------------------------------------------- run


def run_flow(
    flow: Annotated[str, typer.Argument(help="the flow to start now")],
    param: Annotated[list[str] | None, typer.Option("--param", help="a parameter: KEY=VALUE (repeatable)")] = None,
    file: FileOpt = "flows.yaml",
    var: VarOpt = None,
    var_file: VarFileOpt = None,
    branch: BranchOpt = "prod",
) -> int:
    """Start a run of FLOW now (a Workflow from its template; StartExecution on its live alias).

    Prints the run's name and where to watch it. Parameters not given keep their defaults.
    """
    from planner.cli.session import load
    from planner.contract import CompileContext, FlowTarget, operator_of
    from planner.errors import FlowplanError

    params: dict[str, str] = {}
    for pair in param or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise FlowplanError(f"--param {pair!r} is not KEY=VALUE", hint="for example --param epochs=40")
        params[key.strip()] = value
    session = load(manifest_options(file, var, var_file, branch, False))
    _check_flows(session, [flow])
    spec = session.manifest.flows[flow]
    handle = session.backends[spec.backend]
    compiled = handle.compiler().compile(CompileContext(session.manifest, handle.spec, session.provenance))
    target = FlowTarget(
        flow,
        tuple(r for r in compiled if r.flow == flow),
        {p: s.default_text for p, s in spec.parameters.items()},
    )
    submitted = operator_of(handle).submit(_scope(session, spec.backend), target, params)
    lines = [f"Started {submitted.id}, a run of {flow} on {spec.backend} ({submitted.where}).", "Watch it:"]
    lines += [f"  {w}" for w in submitted.watch]
    lines += [f"Note: {n}" for n in submitted.notes]
    print_out("\n".join(lines) + "\n")
    return 0
