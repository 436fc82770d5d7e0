"""The drift issue: one issue per project and branch, edited every night, closed when drift clears.

A nightly job that opens a new issue or adds a comment on every run buries the one fact a
team needs (is it drifted now, and how). Instead one issue, found by its label and the hidden
marker ``<!-- flowplan:drift:PROJECT/BRANCH -->`` at the top of its body, always holds the
latest report: created on the first drift, edited while drift lasts, closed when a run finds
everything in sync, and reopened when drift returns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from planner.cli.github.api import GitHub
from planner.cli.github.comments import RunInfo

_REPORT_MARKER = re.compile(r"^<!-- flowplan-drift: (\S+) -->")


@dataclass(frozen=True)
class DriftReport:
    """``flowplan drift --format markdown`` and its exit code (0 in sync, 2 drift)."""

    key: str
    markdown: str
    drifted: bool

    @classmethod
    def parse(cls, markdown: str, exit_code: int, key: str | None = None) -> DriftReport:
        if exit_code not in (0, 2):
            raise ValueError(f"exit code {exit_code} is not a drift result (0 in sync, 2 drift)")
        found = _REPORT_MARKER.match(markdown)
        if key is None:
            if found is None:
                raise ValueError("the drift report does not start with `<!-- flowplan-drift: PROJECT/BRANCH -->`")
            key = found.group(1)
        return cls(key, markdown, exit_code == 2)


def issue_marker(key: str) -> str:
    return f"<!-- flowplan:drift:{key} -->"


def sync_drift_issue(github: GitHub, report: DriftReport, run: RunInfo, label: str) -> str:
    """Create, edit, reopen or close the one drift issue for ``report.key``; says what it did."""
    issue = _find(github, label, report.key)
    if not report.drifted:
        if issue is None or issue["state"] != "open":
            return "in sync; no open drift issue"
        body = _body(report, run, "flowplan drift cleared")
        github.update_issue(int(issue["number"]), {"body": body, "state": "closed", "state_reason": "completed"})
        return f"in sync; closed issue #{issue['number']}"
    body = _body(report, run, "flowplan drift found")
    if issue is None:
        project, _, branch = report.key.partition("/")
        title = f"flowplan: drift in {project} on branch {branch}" if branch else f"flowplan: drift in {project}"
        created = github.create_issue(title, body, [label])
        return f"drift; opened issue #{created.get('number')}"
    if issue["state"] == "open":
        github.update_issue(int(issue["number"]), {"body": body})
        return f"drift; updated issue #{issue['number']}"
    github.update_issue(int(issue["number"]), {"body": body, "state": "open"})
    return f"drift again; reopened issue #{issue['number']}"


def _find(github: GitHub, label: str, key: str) -> dict[str, Any] | None:
    """The open issue of this key if there is one, else the newest closed one (to reopen)."""
    mine = [i for i in github.issues_with_label(label) if (i.get("body") or "").startswith(issue_marker(key))]
    mine.sort(key=lambda i: (i.get("state") != "open", -int(i["number"])))
    return mine[0] if mine else None


#: GitHub refuses an issue body over 65,536 characters; keep room for the header and the note.
_BODY_LIMIT = 65_000


def _body(report: DriftReport, run: RunInfo, what: str) -> str:
    """Marker, header, report; a report too long for an issue is cut at the end, with a note."""
    text = report.markdown.strip()
    if len(text.encode("utf-16-le")) // 2 > _BODY_LIMIT:
        text = text[: _BODY_LIMIT // 2] + "\n\n… (cut to fit an issue; the whole report is in the CI run)"
    return f"{issue_marker(report.key)}\n{run.line(what)}\n\n{text}\n"
