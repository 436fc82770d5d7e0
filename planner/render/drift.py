"""Drift report → text / Markdown / JSON, all from :func:`planner.drift.drift_report`."""

from __future__ import annotations

import json
from typing import Any

from planner.render.common import fmt, friendly
from planner.render.escape import escape_invisible, escape_values

_WORDS = {
    "changed": "changed outside flowplan",
    "deleted": "deleted outside flowplan (the next apply recreates it)",
    "conflict": "name taken by an object flowplan does not own",
    "untracked": "marked as this project's but unknown to the inventory",
}


def _field_lines(item: dict[str, Any]) -> list[str]:
    lines = []
    for f in item["fields"]:
        path = friendly(f["path"])
        if f["kind"] == "changed":
            lines.append(f"~ {path}: {fmt(f['desired'])} -> {fmt(f['live'])}")
        elif f["kind"] == "added":
            lines.append(f"+ {path}: {fmt(f['live'])}  (added outside flowplan)")
        else:
            lines.append(f"- {path}: {fmt(f['desired'])}  (removed outside flowplan)")
    return lines


def _who(item: dict[str, Any]) -> str:
    managers = item.get("managers") or []
    if not managers:
        return ""
    last = managers[-1]
    text = f"by {last.get('manager', '?')}"
    if last.get("time"):
        text += f" at {last['time']}"
    return text


def render_drift_text(report: dict[str, Any]) -> str:
    report = escape_values(report)
    inputs = report["inputs"]
    out = [f"flowplan drift for project {inputs['project']}, branch {inputs['branch']}", ""]
    if report["in_sync"]:
        out.append("In sync: nothing was changed outside flowplan.")
    else:
        for item in report["drift"]:
            who = _who(item)
            out.append(f"! {item['address']}: {_WORDS[item['kind']]}" + (f" ({who})" if who else ""))
            if item.get("detail"):
                out.append(f"    {item['detail']}")
            out.extend(f"    {line}" for line in _field_lines(item))
        s = report["summary"]
        out.append("")
        out.append(
            f"Drift: {s['changed']} changed, {s['deleted']} deleted, {s['conflict']} conflict(s), "
            f"{s['untracked']} untracked. `flowplan apply` restores the manifest's version."
        )
    if report.get("pending_manifest_changes"):
        out.append(f"({report['pending_manifest_changes']} manifest change(s) not yet applied are not drift.)")
    if report.get("ignored_differences"):
        out.append(f"{report['ignored_differences']} difference(s) ignored by ignore_changes.")
    return "\n".join(out) + "\n"


def render_drift_markdown(report: dict[str, Any]) -> str:
    report = escape_values(report)
    inputs = report["inputs"]
    out = [
        f"<!-- flowplan-drift: {inputs['project']}/{inputs['branch']} -->",
        f"### flowplan drift: `{inputs['project']}` on branch `{inputs['branch']}`",
        "",
    ]
    if report["in_sync"]:
        out.append("**In sync:** nothing was changed outside flowplan.")
        return "\n".join(out) + "\n"
    s = report["summary"]
    out.append(
        f"**Drift: {s['changed']} changed, {s['deleted']} deleted, {s['conflict']} conflict(s), "
        f"{s['untracked']} untracked.**"
    )
    out += ["", "| Resource | What happened | Who / when |", "|---|---|---|"]
    for item in report["drift"]:
        out.append(f"| `{item['address']}` | {_WORDS[item['kind']]} | {_who(item)} |")
    out.append("")
    for item in report["drift"]:
        lines = _field_lines(item)
        if not lines:
            continue
        out += [f"<details><summary><code>{item['address']}</code></summary>", "", "```diff"]
        out += lines
        out += ["```", "", "</details>", ""]
    return "\n".join(out) + "\n"


def render_drift_json(report: dict[str, Any]) -> str:
    return escape_invisible(json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False)) + "\n"
