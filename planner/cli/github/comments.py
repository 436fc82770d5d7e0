"""Pull-request comments that never lie: each names its commit, time and run, and replaces the last.

A plan is posted as comment parts, each starting with the hidden marker
``<!-- flowplan:plan:KEY part N/M -->``. The key says which plan a comment belongs to (the
deployment branch, the manifest's directory when it is not the repository root, and a digest
of the targets for a ``--target`` plan), so a targeted plan never overwrites the full one and
two manifests in one repository keep their own comments. On every run the parts are edited in
place, new parts posted, and parts left from a longer plan deleted; a failed plan replaces all
of them with one error comment, so the previous plan never stands as if it were current.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from planner.cli.github.api import GitHub, GitHubError

#: GitHub's limit on a comment body, counted in UTF-16 code units.
COMMENT_LIMIT = 65535
_WORDS = re.compile(r"\s+")
_MARKER = re.compile(r"^<!-- flowplan:(?P<kind>plan|apply):(?P<key>\S+) part (?P<k>\d+)/(?P<n>\d+) -->")


@dataclass(frozen=True)
class RunInfo:
    """What every comment names: the commit, when the plan was made, and the CI run that made it."""

    commit: str
    time: str
    run_url: str | None

    def line(self, what: str) -> str:
        short = f"`{self.commit[:12]}`" if self.commit else "an unknown commit"
        run = f" · [CI run]({self.run_url})" if self.run_url else ""
        return f"**{what}** for commit {short} · {self.time}{run}"


def comment_key(branch: str, directory: str = ".", targets: Sequence[str] = ()) -> str:
    """``prod``, ``infra/flows:prod``, ``prod+target-1a2b3c4d``: stable for the same inputs, no spaces."""
    key = _WORDS.sub("-", branch.strip()) or "prod"
    folder = directory.strip().strip("/")
    if folder and folder != ".":
        key = f"{_WORDS.sub('-', folder)}:{key}"
    if targets:
        digest = hashlib.sha256("\n".join(sorted(targets)).encode()).hexdigest()[:8]
        key = f"{key}+target-{digest}"
    return key


def marker(kind: str, key: str, part: int, parts: int) -> str:
    return f"<!-- flowplan:{kind}:{key} part {part}/{parts} -->"


def plan_bodies(parts: Sequence[str], key: str, run: RunInfo, targets: Sequence[str] = ()) -> list[str]:
    """Each Markdown part with its marker and a header; a targeted plan warns that it is partial."""
    header = run.line("flowplan plan")
    if targets:
        names = ", ".join(f"`{t}`" for t in targets)
        header += (
            f"\n\n> [!WARNING]\n> **Partial plan**: only {names} (`--target`) was planned. "
            "The rest of the manifest was not compared; this is not the whole change."
        )
    return [_fit(f"{marker('plan', key, k, len(parts))}\n{header}\n\n{text}") for k, text in enumerate(parts, 1)]


def error_body(key: str, run: RunInfo, error: str, title: str = "flowplan plan failed") -> str:
    """The one comment that replaces a plan when planning failed: the error, the commit, the run."""
    text = error.strip() or "(flowplan printed no error text; see the CI run)"
    body = (
        f"{marker('plan', key, 1, 1)}\n{run.line(title)}\n\n"
        "> [!CAUTION]\n> No plan could be made for this commit. An earlier plan for this pull request no "
        "longer applies; fix the error below and push again.\n\n"
        f"```text\n{text}\n```\n"
    )
    return _fit(body)


def apply_body(key: str, run: RunInfo, exit_code: int, output: str) -> str:
    """The note an apply leaves on its pull request: what ran, whether it worked, and its output."""
    verdict = "applied" if exit_code == 0 else f"FAILED (exit {exit_code})"
    head = f"{marker('apply', key, 1, 1)}\n{run.line(f'flowplan apply {verdict}')}\n\n"
    room = COMMENT_LIMIT - _units(head) - 200
    text = output.strip() or "(no output)"
    if _units(text) > room:
        text = "… (start cut; the whole output is in the CI run)\n" + text[-(room // 2) :]
    return f"{head}```text\n{text}\n```\n"


def sync_plan_comments(github: GitHub, number: int, key: str, bodies: Sequence[str]) -> list[str]:
    """Make the pull request's comments for ``key`` exactly ``bodies``; returns the calls made, in order.

    Part k is edited in place when a comment with part k exists, posted otherwise; every other
    comment of this key (parts beyond the new count, duplicates) is deleted. Comments of other
    keys and of other tools are never touched.
    """
    existing: dict[int, list[int]] = {}
    for comment in github.issue_comments(number):
        found = _MARKER.match(comment.get("body") or "")
        if found and found["kind"] == "plan" and found["key"] == key:
            existing.setdefault(int(found["k"]), []).append(int(comment["id"]))
    done: list[str] = []
    for k, body in enumerate(bodies, 1):
        ids = existing.pop(k, [])
        if ids:
            github.update_comment(ids[0], body)
            done.append(f"updated part {k}")
            existing[k] = ids[1:]
        else:
            github.create_comment(number, body)
            done.append(f"posted part {k}")
    for k in sorted(existing):
        for comment_id in existing[k]:
            github.delete_comment(comment_id)
            done.append(f"deleted old part {k}")
    return done


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _fit(body: str) -> str:
    if _units(body) > COMMENT_LIMIT:
        raise GitHubError(
            f"a comment part is {_units(body):,} characters, over GitHub's {COMMENT_LIMIT:,}",
            hint="plan with a smaller --comment-limit (the Action uses 64000 to leave room for its header)",
        )
    return body
