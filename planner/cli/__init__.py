"""The ``flowplan`` command (typer).

Exit codes: 0 success (and no changes with ``--detailed-exitcode``), 1 any
error, 2 changes present (``plan --detailed-exitcode``) or drift found
(``drift``). Errors are one paragraph on stderr; ``--debug`` adds the
traceback.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence

import typer

from planner import heap
from planner.cli.app import app

__all__ = ["app", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point; returns (and exits with) the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    heap.tune()
    debug = "--debug" in args or os.environ.get("FLOWPLAN_DEBUG") == "1"
    if "--debug" in args:
        args.remove("--debug")
    code = run(args, debug=debug)
    heap.settle()  # the interpreter's last collection would walk the whole heap for nothing
    if argv is None:
        sys.exit(code)
    return code


def run(args: list[str], *, debug: bool = False) -> int:
    from typer._click import exceptions as click_exc

    from planner.cli.redact import scrub
    from planner.errors import FlowplanError

    try:
        result = app(args=args, standalone_mode=False, prog_name="flowplan")
    except FlowplanError as exc:
        if debug:
            print(scrub(traceback.format_exc()), end="", file=sys.stderr)  # a traceback quotes messages too
        print(scrub("Error: " + exc.render()), file=sys.stderr)
        return 1
    except click_exc.UsageError as exc:
        exc.show()
        return 1
    except click_exc.ClickException as exc:
        exc.show()
        return 1
    except (typer.Abort, KeyboardInterrupt):
        print("Aborted.", file=sys.stderr)
        return 1
    except typer.Exit as exc:
        return int(exc.exit_code)
    except BrokenPipeError:
        return 1
    except Exception as exc:
        if debug:
            print(scrub(traceback.format_exc()), end="", file=sys.stderr)
        message = scrub(f"{type(exc).__name__}: {exc}")
        print(
            f"Error: flowplan failed unexpectedly ({message}).\n"
            "Rerun with --debug for the traceback, and please report it.",
            file=sys.stderr,
        )
        return 1
    return int(result) if isinstance(result, int) else 0
