"""The ``flowplan`` typer application: the composition of the command modules.

The command modules (:mod:`planner.cli.commands`, :mod:`planner.cli.operate`) define plain
functions and share their options through :mod:`planner.cli.options`; only this module knows
them all, so none of them imports another to register itself. ``--help`` lists the commands
in the order below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from planner.cli import commands, operate
from planner.cli.github import github_app

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

COMMANDS: tuple[tuple[str, Callable[..., Any]], ...] = (
    ("validate", commands.validate),
    ("schema", commands.schema),
    ("plan", commands.plan),
    ("drift", commands.drift),
    ("apply", commands.apply),
    ("destroy", commands.destroy),
    ("import", commands.import_),
    ("show", commands.show),
    ("graph", commands.graph),
    ("force-unlock", commands.force_unlock),
    ("status", operate.status),
    ("history", operate.history),
    ("rollback", operate.rollback),
    ("branches", operate.branches),
    ("run", operate.run_flow),
)

for _name, _command in COMMANDS:
    app.command(_name)(_command)

app.add_typer(github_app, name="github")
