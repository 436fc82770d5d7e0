"""``flowplan github ...``: the commands the shipped Action runs after flowplan itself.

Each reads what the flowplan run left behind (the Markdown parts, the saved plan, the
captured error text, the exit code) and tells GitHub: ``comment`` (pull-request comment
parts, or the error comment that replaces them, or the note an apply leaves), ``drift-issue``,
``annotate`` and ``outputs``. Where a value is not given as a flag it comes from the variables
GitHub Actions sets (``GITHUB_SHA``, ``GITHUB_RUN_ID``, ``GITHUB_EVENT_PATH``, ...).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from planner.cli.github.api import GitHub
from planner.cli.github.comments import (
    RunInfo,
    apply_body,
    comment_key,
    error_body,
    plan_bodies,
    sync_plan_comments,
)
from planner.cli.github.drift import DriftReport, sync_drift_issue
from planner.cli.github.workflow import error_annotations, plan_summary, step_outputs, write_outputs, write_summary
from planner.errors import FlowplanError

github_app = typer.Typer(
    name="github",
    help="Report a flowplan run to GitHub: PR comments, the drift issue, annotations, step outputs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ExitCodeOpt = Annotated[int, typer.Option("--exit-code", help="the exit code of the flowplan run being reported")]
CommitOpt = Annotated[str | None, typer.Option("--commit", help="the commit named in the comment (default GITHUB_SHA)")]
RunUrlOpt = Annotated[str | None, typer.Option("--run-url", help="the CI run link (default from GITHUB_*)")]
ErrorsOpt = Annotated[Path | None, typer.Option("--errors", help="file holding flowplan's error output (stderr)")]
DirectoryOpt = Annotated[str, typer.Option("--directory", help="the manifest's directory, relative to the repository")]


@github_app.command("comment")
def comment(
    exit_code: ExitCodeOpt,
    parts: Annotated[Path | None, typer.Option("--parts", help="the --split directory of the plan")] = None,
    plan: Annotated[Path | None, typer.Option("--plan", help="the saved plan or JSON plan (for its time)")] = None,
    plan_time: Annotated[str | None, typer.Option("--plan-time", help="when the plan was made (UTC, ISO 8601)")] = None,
    errors: ErrorsOpt = None,
    output: Annotated[Path | None, typer.Option("--output", help="apply: the captured output")] = None,
    command: Annotated[str, typer.Option("--command", help="plan or apply")] = "plan",
    pr: Annotated[int | None, typer.Option("--pr", help="pull request number (default from the event)")] = None,
    branch: Annotated[str, typer.Option("--branch", help="the deployment branch planned")] = "prod",
    directory: DirectoryOpt = ".",
    target: Annotated[list[str] | None, typer.Option("--target", help="the plan's --target values")] = None,
    key: Annotated[str | None, typer.Option("--key", help="marker key (default: branch, directory, targets)")] = None,
    commit: CommitOpt = None,
    run_url: RunUrlOpt = None,
    expect_head_sha: Annotated[
        str | None, typer.Option("--expect-head-sha", help="refuse unless the pull request's head is this commit")
    ] = None,
) -> int:
    """Post the plan as comment parts edited in place; a failed plan replaces them with its error.

    ``--expect-head-sha`` is for posting what an untrusted run left (a fork's plan, handed over
    as an artifact): its pull-request number is only believed if that pull request's head is
    the commit the run was made for.
    """
    number = pr if pr is not None else _event_number()
    if number is None:
        typer.echo("flowplan github comment: not a pull request event; nothing to comment on", err=True)
        return 0
    if command not in ("plan", "apply"):
        raise FlowplanError(f"--command must be plan or apply, not {command!r}")
    targets = list(target or [])
    marker_key = key or comment_key(branch, directory, targets)
    github = GitHub.from_env()
    if expect_head_sha is not None:
        _check_head(github, number, expect_head_sha)
    if command == "apply":
        run = _run_info(commit, run_url, None)
        github.create_comment(number, apply_body(marker_key, run, exit_code, _read(output)))
        typer.echo(f"posted the apply result on #{number}", err=True)
        return 0
    if exit_code in (0, 2):
        run = _run_info(commit, run_url, _plan_time(plan, plan_time))
        bodies = plan_bodies(_read_parts(parts), marker_key, run, targets)
    else:
        bodies = [error_body(marker_key, _run_info(commit, run_url, None), _read(errors))]
    for line in sync_plan_comments(github, number, marker_key, bodies):
        typer.echo(f"#{number}: {line}", err=True)
    return 0


@github_app.command("plan-run")
def plan_run(
    workflow: Annotated[str, typer.Option("--workflow", help="the plan workflow's file name")],
    commit: Annotated[str, typer.Option("--commit", help="the pull request's head commit")],
) -> int:
    """Print the id of the newest successful plan run on a commit (to fetch its reviewed saved plan)."""
    found = GitHub.from_env().successful_run(workflow, commit)
    if found is None:
        raise FlowplanError(
            f"no successful {workflow} run for {commit}: nothing reviewed to apply",
            hint="run the plan on the pull request again, or apply with a fresh plan",
        )
    print(found)
    return 0


@github_app.command("drift-issue")
def drift_issue(
    exit_code: ExitCodeOpt,
    report: Annotated[Path, typer.Option("--report", help="`flowplan drift --format markdown` output")],
    label: Annotated[str, typer.Option("--label", help="the label that finds the drift issue")] = "flowplan-drift",
    key: Annotated[str | None, typer.Option("--key", help="issue key (default PROJECT/BRANCH from the report)")] = None,
    commit: CommitOpt = None,
    run_url: RunUrlOpt = None,
) -> int:
    """Open, edit, close or reopen the one drift issue of this project and branch."""
    if exit_code not in (0, 2):
        typer.echo("flowplan github drift-issue: the drift check failed; the issue is left as it is", err=True)
        return 0
    try:
        parsed = DriftReport.parse(_read(report), exit_code, key)
    except ValueError as exc:
        raise FlowplanError(f"{report}: {exc}") from None
    typer.echo(sync_drift_issue(GitHub.from_env(), parsed, _run_info(commit, run_url, None), label), err=True)
    return 0


@github_app.command("annotate")
def annotate(
    errors: Annotated[Path, typer.Option("--errors", help="file holding flowplan's error output (stderr)")],
    directory: DirectoryOpt = ".",
    title: Annotated[str, typer.Option("--title", help="annotation title")] = "flowplan",
) -> int:
    """Print ``::error file=...,line=...::`` for each manifest problem, so it shows at its line."""
    for line in error_annotations(_read(errors), directory, title):
        print(line)
    return 0


@github_app.command("outputs")
def outputs(
    exit_code: ExitCodeOpt,
    plan: Annotated[Path | None, typer.Option("--plan", help="the saved plan or JSON plan")] = None,
    markdown: Annotated[Path | None, typer.Option("--markdown", help="Markdown for the job summary")] = None,
    errors: ErrorsOpt = None,
    title: Annotated[str, typer.Option("--title", help="heading of the job summary")] = "flowplan",
    record: Annotated[Path | None, typer.Option("--record", help="also write exit-code and plan-time here")] = None,
) -> int:
    """Set the step outputs (exit code, counts, has-destroys) and write the job summary.

    ``--record DIR`` leaves the exit code and the plan time as files beside the Markdown parts,
    so a later run that only has the artifact (the poster of a fork's plan) can say both.
    """
    found = plan_summary(plan) if plan is not None and plan.exists() and exit_code != 1 else None
    values = step_outputs(exit_code, found["summary"] if found else None)
    values["plan-time"] = found["created_at"] if found else ""
    write_outputs(values)
    if record is not None:
        record.mkdir(parents=True, exist_ok=True)
        (record / "exit-code").write_text(f"{exit_code}\n")
        (record / "plan-time").write_text(f"{values['plan-time']}\n")
    if exit_code == 1:
        write_summary(f"### {title} failed (exit 1)\n\n```text\n{_read(errors).strip()}\n```\n")
    elif markdown is not None and markdown.exists():
        write_summary(markdown.read_text())
    return 0


def _check_head(github: GitHub, number: int, expected: str) -> None:
    head = (github.pull_request(number).get("head") or {}).get("sha")
    if head != expected:
        raise FlowplanError(
            f"pull request #{number} is at {head}, not {expected}: not posting a plan made for another commit"
        )


def _read_parts(parts: Path | None) -> list[str]:
    """The Markdown parts ``plan --split DIR`` wrote, in order."""
    if parts is None:
        raise FlowplanError("a plan comment needs --parts DIR (the directory given to `plan --split`)")
    files = sorted(parts.glob("plan-[0-9][0-9][0-9].md"))
    if not files:
        raise FlowplanError(f"no plan-NNN.md parts in {parts}: was the plan run with --split {parts}?")
    return [f.read_text() for f in files]


def _plan_time(plan: Path | None, given: str | None) -> str | None:
    """The plan's own time: from the plan file, else ``--plan-time`` (checked: it may come from an artifact)."""
    if plan is not None and plan.exists():
        return str(plan_summary(plan)["created_at"])
    if given and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", given.strip()):
        return given.strip()
    return None


def _read(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _run_info(commit: str | None, run_url: str | None, time: str | None) -> RunInfo:
    env = os.environ
    if run_url is None and env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        run_url = f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    if time:
        when = f"planned {time}"
    else:
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        when = f"at {now}"
    return RunInfo(commit or env.get("GITHUB_SHA", ""), when, run_url)


def _event_number() -> int | None:
    """The pull request (or issue) number of the event that started the run, if it has one."""
    path = os.environ.get("GITHUB_EVENT_PATH")
    if not path:
        return None
    try:
        event = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    for holder in (event.get("pull_request"), event.get("issue"), event):
        if isinstance(holder, dict) and isinstance(holder.get("number"), int):
            return int(holder["number"])
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m planner.cli.github``: errors as one paragraph (never the token), exit 1."""
    from typer._click import exceptions as click_exc

    from planner.cli.redact import scrub

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = github_app(args=args, standalone_mode=False, prog_name="flowplan github")
    except FlowplanError as exc:  # GitHubError among them
        print(scrub("Error: " + exc.render()), file=sys.stderr)
        return 1
    except click_exc.ClickException as exc:
        exc.show()
        return 1
    except typer.Exit as exc:
        return int(exc.exit_code)
    return int(result) if isinstance(result, int) else 0
