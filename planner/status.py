"""``flowplan status``: is each flow deployed, in sync, scheduled, triggerable, and how did it run?

The CLI gathers the facts — a refresh-only plan (what is deployed and how it differs from the
manifest), the runs and the trigger plumbing each backend's :class:`~planner.contract.Operator`
reports — and this module turns them into one JSON-ready view. Text and Markdown are rendered from
that view, so the three formats never disagree. Pure: the clock is a parameter.

When does status exit 1 (for alerting)? When :func:`alerts` finds anything: a flow whose objects
are missing, a flow whose last *finished* run failed (a run in progress says nothing yet), trigger
plumbing that is known broken, or a backend whose runs could not be read. Drift alone is not an
alert here — ``flowplan drift`` exits 2 for it.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from planner.building import PlanResult
from planner.contract import Run, TriggerHealth
from planner.manifest import Flow, Manifest
from planner.schedule import describe, next_fire_times

__all__ = ["FIRE_TIMES", "alerts", "render_status_markdown", "render_status_text", "status_view"]

#: Upcoming fire times shown per schedule.
FIRE_TIMES = 3
_MARK = {"succeeded": "ok", "failed": "FAILED", "running": "running", "pending": "pending", "aborted": "aborted"}


def _iso(moment: datetime.datetime) -> str:
    return moment.isoformat()


def _utc_text(value: str | None) -> str:
    return value.replace("T", " ") if value else "-"


def duration_text(seconds: float | None) -> str:
    """``3h 02m``, ``4m 10s``, ``12s`` — how long a run took (or has been running)."""
    if seconds is None or seconds < 0:
        return "-"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def _parse(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def run_view(run: Run, now: datetime.datetime) -> dict[str, Any]:
    """One run for the view; a running run's duration is counted up to ``now``."""
    data = run.to_json()
    started, finished = _parse(run.started), _parse(run.finished)
    end = finished or (now if run.outcome == "running" else None)
    data["duration_seconds"] = (end - started).total_seconds() if started and end and end >= started else None
    return data


def _schedule_view(
    flow: Flow, manifest: Manifest, health: Sequence[TriggerHealth], deployed: bool, now: datetime.datetime
) -> dict[str, Any] | None:
    schedule = flow.schedule
    if schedule is None:
        return None
    live = [h for h in health if h.kind == "schedule"]
    if live and deployed:
        suspended = any(h.state == "suspended" for h in live)
        source = "deployed"
    else:
        suspended = schedule.suspend or not manifest.schedules_enabled()
        source = "manifest"
    fires = next_fire_times(schedule.cron, schedule.timezone, FIRE_TIMES, after=now)
    return {
        "name": schedule.name,
        "cron": schedule.cron,
        "every": schedule.every,
        "timezone": schedule.timezone,
        "words": describe(schedule.cron),
        "next": [_iso(f) for f in fires],
        "suspended": suspended,
        "suspended_from": source,
    }


def _flow_view(
    flow: Flow,
    manifest: Manifest,
    result: PlanResult,
    runs: Mapping[str, Sequence[Run]] | None,
    runs_note: str | None,
    health: Sequence[TriggerHealth] | None,
    health_note: str | None,
    now: datetime.datetime,
) -> dict[str, Any]:
    view = result.views.get(flow.backend)
    desired = sorted((a for a, r in result.desired.items() if r.flow == flow.name), key=lambda a: a.sort_key())
    owned = view.live.owned if view is not None else {}
    present = [a for a in desired if a in owned]
    changes = [c for c in result.plan.changes if c.address in set(desired)]
    if not present:
        deployed = "no"
    elif len(present) < len(desired):
        deployed = "partly"
    else:
        deployed = "yes"
    if deployed == "no":
        sync = "not deployed"
    elif any(c.drifted for c in changes):
        sync = "drifted"
    elif changes:
        sync = "manifest changed"
    else:
        sync = "in sync"
    flow_runs = [run_view(r, now) for r in (runs or {}).get(flow.name, [])]
    finished = [r for r in flow_runs if r["outcome"] in ("succeeded", "failed", "aborted")]
    triggers = [h.to_json() for h in health or []]
    alerts: list[str] = []
    if deployed == "no":
        alerts.append("not deployed")
    elif deployed == "partly":
        alerts.append(f"{len(desired) - len(present)} of {len(desired)} objects missing")
    if finished and finished[0]["outcome"] == "failed":
        alerts.append(f"last run failed ({finished[0]['id']})")
    broken = [t for t in triggers if t["healthy"] is False]
    if broken and deployed != "no":
        alerts.append("trigger plumbing broken: " + ", ".join(f"{t['kind']} {t['name']}" for t in broken))
    manifest_triggers = [t.key for t in flow.triggers]
    return {
        "name": flow.name,
        "backend": flow.backend,
        "deployed": deployed,
        "objects": {"desired": len(desired), "deployed": len(present)},
        "sync": sync,
        "changes": [
            {"address": str(c.address), "action": c.action.value, "cause": c.cause.value, "drifted": c.drifted}
            for c in changes
        ],
        "schedule": _schedule_view(flow, manifest, health or [], deployed != "no", now),
        "triggers_declared": manifest_triggers,
        "triggers": triggers,
        "triggers_note": health_note,
        "runs": flow_runs if runs is not None else None,
        "runs_note": runs_note,
        "last_finished_run": finished[0] if finished else None,
        "alerts": alerts,
    }


def status_view(
    manifest: Manifest,
    result: PlanResult,
    *,
    flows: Sequence[str] = (),
    runs: Mapping[str, Mapping[str, Sequence[Run]]] | None = None,
    runs_notes: Mapping[str, str] | None = None,
    health: Mapping[str, Mapping[str, Sequence[TriggerHealth]]] | None = None,
    health_notes: Mapping[str, str] | None = None,
    problems: Sequence[str] = (),
    now: datetime.datetime,
    limit: int = 5,
) -> dict[str, Any]:
    """The JSON-ready status of ``flows`` (default: every flow of the manifest).

    ``runs`` and ``health`` are per backend, then per flow; a backend missing from them was not
    asked or could not answer, and ``runs_notes`` / ``health_notes`` say why (shown instead).
    """
    runs = runs or {}
    health = health or {}
    names = list(flows) or sorted(manifest.flows)
    views = []
    for name in names:
        flow = manifest.flows[name]
        views.append(
            _flow_view(
                flow,
                manifest,
                result,
                runs.get(flow.backend),
                (runs_notes or {}).get(flow.backend),
                (health.get(flow.backend) or {}).get(flow.name) if flow.backend in health else None,
                (health_notes or {}).get(flow.backend),
                now,
            )
        )
    data = {
        "project": manifest.project,
        "branch": manifest.branch,
        "generated_at": now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "run_limit": limit,
        "backend_targets": dict(result.plan.backend_targets),
        "flows": views,
        "problems": list(problems),
    }
    data["alerts"] = alerts(data)
    return data


def alerts(view: Mapping[str, Any]) -> list[str]:
    """Everything that should page someone: ``flowplan status`` exits 1 when this is not empty."""
    found = [f"{flow['name']}: {alert}" for flow in view["flows"] for alert in flow["alerts"]]
    return found + [f"problem: {p}" for p in view.get("problems", [])]


# --------------------------------------------------------------------------- text


def _fire_text(values: Sequence[str], timezone: str) -> str:
    """Fire times on the schedule's own wall clock, named by its time zone (``Fri 2026-11-27 02:30``)."""
    shown = [datetime.datetime.fromisoformat(value).strftime("%a %Y-%m-%d %H:%M") for value in values]
    return ", ".join(shown) + f" {timezone}"


def _schedule_text(schedule: Mapping[str, Any]) -> str:
    text = f"{schedule['words']} ({schedule['cron']}, {schedule['timezone']})"
    if schedule["suspended"]:
        where = "deployed suspended" if schedule["suspended_from"] == "deployed" else "suspended by the manifest"
        return f"{text}; {where}, would fire next {_fire_text(schedule['next'], schedule['timezone'])}"
    return f"{text}; next {_fire_text(schedule['next'], schedule['timezone'])}"


def _health_text(item: Mapping[str, Any]) -> str:
    mark = {True: "ok", False: "BROKEN", None: "?"}[item["healthy"]]
    text = f"[{mark}] {item['kind']} {item['name']}: {item['state']}"
    return text + (f" ({item['detail']})" if item["detail"] else "")


def _run_text(run: Mapping[str, Any]) -> str:
    mark = _MARK.get(run["outcome"], run["outcome"])
    line = f"{mark:<9} {run['id']}  started {_utc_text(run['started'])}  took {duration_text(run['duration_seconds'])}"
    if run["outcome"] == "running":
        line = line.replace("  took ", "  running for ")
    return line + (f"  ({run['detail']})" if run.get("detail") and run["outcome"] != "succeeded" else "")


def render_status_text(view: Mapping[str, Any]) -> str:
    """Status for a terminal or a log: one block per flow, alerts last."""
    out = [f"Status of project {view['project']}, branch {view['branch']} at {_utc_text(view['generated_at'])}", ""]
    for flow in view["flows"]:
        head = f"{flow['name']} on {flow['backend']}: "
        if flow["deployed"] == "no":
            head += "NOT DEPLOYED"
        else:
            head += f"deployed{' (partly)' if flow['deployed'] == 'partly' else ''}, {flow['sync']}"
            head += f" ({flow['objects']['deployed']}/{flow['objects']['desired']} objects)"
        out.append(head)
        for change in flow["changes"]:
            out.append(f"    {change['action']} {change['address']} ({change['cause']})")
        if flow["schedule"]:
            out.append(f"  schedule: {_schedule_text(flow['schedule'])}")
        else:
            out.append("  schedule: none")
        if flow["triggers"]:
            out.append("  triggers:")
            out.extend(f"    {_health_text(t)}" for t in flow["triggers"])
        elif flow["triggers_declared"]:
            note = flow["triggers_note"] or "not checked"
            out.append(f"  triggers: {', '.join(flow['triggers_declared'])} ({note})")
        if flow["runs"] is None:
            out.append(f"  runs: {flow['runs_note'] or 'not available'}")
        elif not flow["runs"]:
            out.append("  runs: none yet")
        else:
            out.append(f"  last {len(flow['runs'])} run(s), newest first:")
            out.extend(f"    {_run_text(r)}" for r in flow["runs"])
        for alert in flow["alerts"]:
            out.append(f"  ! {alert}")
        out.append("")
    for problem in view.get("problems", []):
        out.append(f"! {problem}")
    if view["alerts"]:
        out.append(f"{len(view['alerts'])} alert(s): exit 1.")
    else:
        out.append("All flows deployed; no failed last runs.")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- markdown


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_status_markdown(view: Mapping[str, Any]) -> str:
    """Status as Markdown: a summary table, then per flow the triggers and the last runs."""
    out = [f"### Status of `{view['project']}` / `{view['branch']}` at {_utc_text(view['generated_at'])}", ""]
    out.append("| flow | backend | deployed | sync | schedule | next run | last finished run |")
    out.append("|---|---|---|---|---|---|---|")
    for flow in view["flows"]:
        schedule = flow["schedule"]
        words = "-" if schedule is None else schedule["words"] + (" (suspended)" if schedule["suspended"] else "")
        upcoming = "-"
        if schedule is not None and not schedule["suspended"]:
            upcoming = _fire_text(schedule["next"][:1], schedule["timezone"])
        last = flow["last_finished_run"]
        last_text = (
            "-" if last is None else f"{_MARK.get(last['outcome'], last['outcome'])} {_utc_text(last['started'])}"
        )
        deployed = {"yes": "yes", "partly": "**partly**", "no": "**no**"}[flow["deployed"]]
        out.append(
            f"| `{flow['name']}` | {flow['backend']} | {deployed} | {flow['sync']} | {_cell(words)} | "
            f"{upcoming} | {last_text} |"
        )
    out.append("")
    for flow in view["flows"]:
        out.append(f"#### `{flow['name']}`")
        out.append("")
        if flow["schedule"]:
            out.append(f"- schedule: {_cell(_schedule_text(flow['schedule']))}")
        for item in flow["triggers"]:
            out.append(f"- {_cell(_health_text(item))}")
        if flow["runs"] is None:
            out.append(f"- runs: {flow['runs_note'] or 'not available'}")
        elif flow["runs"]:
            out.append("")
            out.append("| outcome | run | started | duration |")
            out.append("|---|---|---|---|")
            for run in flow["runs"]:
                out.append(
                    f"| {_MARK.get(run['outcome'], run['outcome'])} | `{run['id']}` | {_utc_text(run['started'])} | "
                    f"{duration_text(run['duration_seconds'])} |"
                )
        else:
            out.append("- runs: none yet")
        for alert in flow["alerts"]:
            out.append(f"- :warning: {_cell(alert)}")
        out.append("")
    if view["alerts"]:
        out.append(f"**{len(view['alerts'])} alert(s)**: " + "; ".join(_cell(a) for a in view["alerts"]))
    return "\n".join(out).rstrip("\n") + "\n"
