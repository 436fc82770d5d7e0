"""What the command modules share: typer options and the helpers that print.

Heavy modules are imported inside the helpers so ``flowplan --help`` starts fast.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from planner.cli.session import ManifestOptions

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
AutoApproveOpt = Annotated[bool, typer.Option("--auto-approve", help="do not ask for confirmation (CI)")]
BackendOpt = Annotated[str | None, typer.Option("--backend", help="only this backend of the manifest")]
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


def manifest_options(
    file: str, var: list[str] | None, var_file: list[str] | None, branch: str, enable: bool
) -> ManifestOptions:
    from planner.cli.session import ManifestOptions, parse_vars

    return ManifestOptions(file, parse_vars(var or []), tuple(var_file or []), branch, enable)


def use_color(no_color: bool) -> bool:
    return not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()


def print_out(text: str) -> None:
    """Print to stdout with every known secret scrubbed and invisible characters shown as escapes.

    The renderers escape what they render already; this is the last line of defence for any other text.
    """
    from planner.cli.redact import scrub
    from planner.render.escape import escape_invisible

    sys.stdout.write(escape_invisible(scrub(text)))
    sys.stdout.flush()


def print_err(text: str) -> None:
    """Print one line to stderr with every known secret scrubbed and invisible characters shown as escapes."""
    from planner.cli.redact import scrub
    from planner.render.escape import escape_invisible

    sys.stderr.write(escape_invisible(scrub(text)) + "\n")
    sys.stderr.flush()


def check_format(fmt: str, allowed: tuple[str, ...] = ("text", "markdown", "json")) -> None:
    if fmt not in allowed:
        from planner.errors import FlowplanError

        raise FlowplanError(f"--format {fmt!r} is not one of {', '.join(allowed)}")


def render_plan(plan: Any, fmt: str, color: bool, comment_limit: int = 65_535) -> str:
    from planner.render import render_json, render_markdown, render_text

    if fmt == "json":
        return str(render_json(plan))
    if fmt == "markdown":
        return str(render_markdown(plan, limit=comment_limit))
    return str(render_text(plan, color=color))
