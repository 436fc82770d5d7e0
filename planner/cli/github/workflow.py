"""What a GitHub Actions step reports besides comments: annotations, step outputs and the job summary.

These talk to the runner, not the API: ``::error file=...,line=...::`` lines on stdout put a
manifest error on the pull request's "Files changed" tab at its line; ``$GITHUB_OUTPUT`` gives
later steps the exit code and the counts (``has-destroys`` for a required review, say); and
``$GITHUB_STEP_SUMMARY`` shows the plan on the run's page.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

#: A problem line of ``flowplan validate``/``plan``: ``  flows.yaml:21:11: schedules.nightly.cron: ...``.
_PROBLEM = re.compile(r"^\s*(?P<file>[^\s:][^:\n]*?):(?P<line>\d+)(?::(?P<col>\d+))?: (?P<message>.+)$")
#: GitHub shows at most 1 MiB of a step's summary.
SUMMARY_LIMIT = 1_000_000
COUNTS = ("create", "update", "replace", "delete", "move", "adopt", "conflicts", "drifted")


def error_annotations(error_text: str, directory: str = ".", title: str = "flowplan") -> Iterator[str]:
    """One ``::error`` workflow command per problem at file:line; one without a place for anything else."""
    placed = False
    for raw in error_text.splitlines():
        found = _PROBLEM.match(raw)
        if found is None or raw.startswith("Error:"):
            continue
        placed = True
        path = os.path.normpath(os.path.join(directory, found["file"]))
        where = f"file={_property(path)},line={found['line']}"
        if found["col"]:
            where += f",col={found['col']}"
        yield f"::error {where},title={_property(title)}::{_data(found['message'])}"
    if not placed and error_text.strip():
        yield f"::error title={_property(title)}::{_data(error_text.strip())}"


def plan_summary(path: Path) -> dict[str, Any]:
    """The plan's summary counts, inputs and time, from a saved plan (``--out``) or a JSON plan."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the plan {path}: {exc}") from None
    if isinstance(document, dict) and document.get("kind") == "flowplan-saved-plan":
        document = document.get("payload", {}).get("plan", {})
    if not isinstance(document, dict) or not isinstance(document.get("summary"), dict):
        raise ValueError(f"{path} is neither a saved plan nor `flowplan plan --format json` output")
    return {
        "summary": document["summary"],
        "created_at": str(document.get("created_at", "")),
        "inputs": document.get("inputs") or {},
    }


def step_outputs(exit_code: int, summary: Mapping[str, Any] | None) -> dict[str, str]:
    """``exit-code``, every count, ``has-changes`` and ``has-destroys`` as the strings Actions passes on."""
    counts = {name: int((summary or {}).get(name, 0)) for name in COUNTS}
    changes = sum(counts[name] for name in ("create", "update", "replace", "delete", "move", "adopt"))
    outputs = {"exit-code": str(exit_code), **{name: str(count) for name, count in counts.items()}}
    outputs["has-changes"] = _flag(changes > 0 or counts["conflicts"] > 0)
    outputs["has-destroys"] = _flag(counts["delete"] + counts["replace"] > 0)
    return outputs


def write_outputs(outputs: Mapping[str, str], env: Mapping[str, str] | None = None) -> None:
    target = (os.environ if env is None else env).get("GITHUB_OUTPUT")
    if not target:
        return
    with open(target, "a", encoding="utf-8") as handle:
        for name, value in outputs.items():
            handle.write(f"{name}={value}\n")


def write_summary(markdown: str, env: Mapping[str, str] | None = None) -> None:
    target = (os.environ if env is None else env).get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    if len(markdown.encode()) > SUMMARY_LIMIT:
        cut = markdown.encode()[: SUMMARY_LIMIT - 200].decode(errors="ignore")
        markdown = cut + "\n\n… (cut to fit the job summary; the whole plan is in the `flowplan-plan-md` artifact)\n"
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(markdown.rstrip("\n") + "\n")


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")
