"""Stale plans: a saved plan is refused whenever planning again gives other inputs or another change set.

Each case deploys a generated manifest, moves it on, saves the plan
(``plan --out plan.bin``), disturbs one thing, and applies the saved plan:

- an out-of-band change to an object the plan updates (straight to the server or file);
- an edit of the manifest;
- another var: asked for on the command line, or a var file's content changed;
- another branch: asked for on the command line, or written into the plan file (checksum recomputed);
- another backend target: the kubeconfig or endpoint now points elsewhere, or the manifest's backend moved;
- a hand-edited plan file: a body changed (checksum left as is, or recomputed).

Every case exits 1 with one message saying why and that nothing was written,
and nothing was written: the proxy saw no write of any kind (not even the
lock), the files backend's tree is byte-identical. An undisturbed saved plan
applies (the control).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from planner.plan import plan_file_checksum
from tests.reliability.harness import (
    ArgoTarget,
    FilesTarget,
    Recorder,
    StepFunctionsTarget,
    Target,
    WriteLog,
    reset_target,
    scale,
)
from tests.support.kubeconfig import write_kubeconfig
from tests.support.proxy import start_proxy

FLOWS = 4
PLAN = "plan.bin"


def _prepare(target: Target, *plan_args: str) -> Path:
    reset_target(target)
    target.write(FLOWS, variant=0)
    assert target.apply(*plan_args).code == 0
    target.write(FLOWS, variant=1)
    saved = target.root / PLAN
    result = target.run("plan", "--allow-destroy", "--out", str(saved), *plan_args)
    assert result.code == 0, result.text
    return saved


# --------------------------------------------------------------------------- the disturbances


def _out_of_band(target: Target) -> None:
    """Change the CronWorkflow / Schedule of flow f000, which the plan updates (its cron moves)."""
    if isinstance(target, FilesTarget):
        path = target.root / "deploy/ml/cronworkflow/rel-prod-f000.yaml"
        path.write_text(path.read_text().replace("concurrencyPolicy: Allow", "concurrencyPolicy: Forbid"))
    elif isinstance(target, ArgoTarget):
        obj = target.server.get_object("CronWorkflow", "ml", "rel-prod-f000")
        obj["spec"]["failedJobsHistoryLimit"] = 7
        target.server.put_object(obj, manager="kubectl-edit")
    elif isinstance(target, StepFunctionsTarget):
        scheduler = target.aws.client("scheduler")
        current = scheduler.get_schedule(Name="rel-prod-f000", GroupName="rel-prod")
        keep = ("Name", "GroupName", "ScheduleExpression", "ScheduleExpressionTimezone", "State")
        request = {k: current[k] for k in keep if k in current}
        request.update(FlexibleTimeWindow=current["FlexibleTimeWindow"], Target=current["Target"])
        scheduler.update_schedule(**request, Description="edited by hand")


def _edit_manifest(target: Target) -> None:
    text = target.manifest_path.read_text()
    target.manifest_path.write_text(text.replace("[echo, 'n1']", "[echo, 'n1', again]", 1))


def _edit_plan_file(saved: Path, *, recompute: bool, edit: Callable[[dict[str, Any]], None]) -> None:
    document = json.loads(saved.read_text())
    edit(document["payload"])
    if recompute:
        document["checksum"] = plan_file_checksum(document["payload"])
    saved.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")


def _change_a_body(payload: dict[str, Any]) -> None:
    change = next(c for c in payload["plan"]["changes"] if c.get("after"))
    change["after"].setdefault("metadata", {})["labels"] = {"edited": "by-hand"}
    change["after"]["edited"] = True


def _change_the_branch(payload: dict[str, Any]) -> None:
    payload["manifest_options"]["branch"] = "dev"
    payload["plan"]["inputs"]["branch"] = "dev"


def _other_target(target: Target, stack: list[Any]) -> list[str]:
    """Arguments (or environment) that point the apply at another target; the stack keeps what to stop."""
    if isinstance(target, ArgoTarget):
        second = start_proxy(target.server.url)
        stack.append(second)
        log = WriteLog()
        second.rules.append(log)
        stack.append(log)
        kubeconfig = write_kubeconfig(target.root / "kubeconfig-elsewhere", second.url, target.server.admin_token)
        stack.append(("KUBECONFIG", str(kubeconfig)))
        return []
    if isinstance(target, StepFunctionsTarget):
        second = start_proxy(target.aws.server.url)
        stack.append(second)
        log = WriteLog()
        second.rules.append(log)
        stack.append(log)
        target.point_at(second.url)
        return []
    text = target.manifest_path.read_text()
    target.manifest_path.write_text(text.replace("path: deploy", "path: deploy-elsewhere"))
    return []


CASES = [
    "out-of-band change",
    "manifest edit",
    "var on the command line",
    "var file content",
    "branch on the command line",
    "branch written into the plan file",
    "backend target",
    "hand edit, checksum kept",
    "hand edit, checksum recomputed",
]


#: The live backends' cases in order of interest (the seed scale tries the first few).
LIVE_ORDER = [
    "out-of-band change",
    "backend target",
    "hand edit, checksum recomputed",
    "var file content",
    "manifest edit",
    "branch written into the plan file",
    "var on the command line",
    "branch on the command line",
    "hand edit, checksum kept",
]


def _run_case(target: Target, case: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, dict[str, int]]:
    """Disturb, apply the saved plan; (stderr, writes seen) — the test checks both."""
    plan_args: tuple[str, ...] = ()
    var_file = target.root / "extra.vars.yaml"
    if case == "var file content":
        var_file.write_text("tag: '1.36'\n")
        plan_args = ("--var-file", str(var_file))
    saved = _prepare(target, *plan_args)
    before = target.snapshot()
    apply_args: list[str] = []
    stack: list[Any] = []
    if case == "out-of-band change":
        _out_of_band(target)
        before = target.snapshot()
    elif case == "manifest edit":
        _edit_manifest(target)
    elif case == "var on the command line":
        apply_args = ["--var", "tag=1.37"]
    elif case == "var file content":
        var_file.write_text("tag: '1.37'\n")
        apply_args = list(plan_args)  # the same var files, one of them changed
    elif case == "branch on the command line":
        apply_args = ["--branch", "dev"]
    elif case == "branch written into the plan file":
        _edit_plan_file(saved, recompute=True, edit=_change_the_branch)
    elif case == "backend target":
        _other_target(target, stack)
        for item in stack:
            if isinstance(item, tuple):
                monkeypatch.setenv(*item)
        before = target.snapshot()
    elif case == "hand edit, checksum kept":
        _edit_plan_file(saved, recompute=False, edit=_change_a_body)
    elif case == "hand edit, checksum recomputed":
        _edit_plan_file(saved, recompute=True, edit=_change_a_body)
    log = WriteLog()
    proxy = getattr(target, "proxy", None)
    if proxy is not None:
        proxy.rules[:] = [log]
    try:
        result = target.run("apply", str(saved), *apply_args)
    finally:
        if proxy is not None:
            proxy.rules.clear()
        for item in stack:
            if hasattr(item, "stop"):
                item.stop()
    assert result.code == 1, f"{case}: {result.text}"
    assert "Traceback" not in result.text and "unexpectedly" not in result.text, result.text
    writes = {k: v for k, v in log.snapshot().items() if k != "lock-read"}
    for item in stack:
        if isinstance(item, WriteLog):
            for key, value in item.snapshot().items():
                if key != "lock-read":
                    writes[key] = writes.get(key, 0) + value
    assert sum(writes.values()) == 0, f"{case}: writes {writes}"
    if isinstance(target, StepFunctionsTarget):
        target.point_at(target.aws.url)
    assert target.snapshot() == before, f"{case}: the deployed state changed"
    return result.err, writes


def _check_all(target: Target, trial: Recorder, monkeypatch: pytest.MonkeyPatch, cases: list[str]) -> None:
    messages = {}
    for case in cases:
        with monkeypatch.context() as local:
            err, _ = _run_case(target, case, local)
        messages[case] = err.strip().splitlines()[0] if err.strip() else ""
        reason = err.lower()
        assert "nothing was written" in reason or "modified after flowplan wrote it" in reason, f"{case}: {err}"
    trial.extra["messages"] = messages
    # the control: an undisturbed saved plan applies
    saved = _prepare(target)
    applied = target.run("apply", str(saved))
    assert applied.code == 0, applied.text
    assert target.converged() == []
    trial.size = {"cases": len(cases) + 1}
    trial.check("each disturbance refused, exit 1, one message")
    trial.check("zero writes (proxy, lock included); files: byte-identical tree")
    trial.check("an undisturbed saved plan applies")


def test_stale_saved_plans_are_refused_on_files(files_target: Target, trial: Recorder, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    trial.family, trial.backend = "stale plans", "files"
    _check_all(files_target, trial, monkeypatch, CASES)


@pytest.mark.slow
def test_stale_saved_plans_are_refused_on_live_backends(
    live_target: Target, trial: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    trial.family, trial.backend = "stale plans", live_target.kind
    chosen = LIVE_ORDER[: scale().stale_cases_live]
    _check_all(live_target, trial, monkeypatch, [c for c in CASES if c in chosen])
