"""The CI examples run as written: their steps and the Action's, against a real project and a GitHub API.

Each workflow job runs through tests/ci/runner.py: ``run:`` steps in bash, ``uses: ./`` as the
composite Action in action.yml (its own shell steps, for real), upload/download-artifact as
copies. flowplan runs as a program on the files backend; ``pip`` is a stub that records its
arguments; GitHub is the local API server, so each test checks the calls the Action made.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.ci.conftest import TOKEN
from tests.ci.runner import JobResult, base_env, install_stubs, load, run_job
from tests.planner.loop import REPO, Project
from tests.support.github_server import GitHubServer

EXAMPLES = REPO / "examples" / "ci"
GITHUB = EXAMPLES / "github"
HEAD = "f" * 40
COMMENTS = "/repos/acme/recsys/issues/42/comments"


class Sandbox:
    """A project directory, the stubs on PATH, an artifact store and the GitHub Actions variables."""

    def __init__(self, root: Path, api: GitHubServer) -> None:
        self.root, self.api = root, api
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
        self.event: dict[str, Any] = {
            "number": 42,
            "pull_request": {
                "number": 42,
                "merged": True,
                "head": {"sha": HEAD, "repo": {"full_name": "acme/recsys"}},
            },
        }
        self.env.update(
            {
                "GITHUB_API_URL": api.url,
                "GITHUB_REPOSITORY": "acme/recsys",
                "GITHUB_SERVER_URL": "https://github.example",
                "GITHUB_RUN_ID": "777",
                "GITHUB_SHA": "e" * 40,
                "GITHUB_EVENT_PATH": str(root / "event.json"),
            }
        )

    def run(self, workflow: str, job: str) -> JobResult:
        (self.root / "event.json").write_text(json.dumps(self.event))
        context = {"github": {"repository": "acme/recsys", "token": TOKEN, "sha": "e" * 40, "event": self.event}}
        return run_job(
            GITHUB / workflow,
            job,
            workdir=self.project,
            context={**context, "vars": {}, "secrets": {}},
            env=self.env,
            artifacts=self.artifacts,
        )

    def calls(self, tool: str) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [c for c in map(json.loads, self.log.read_text().splitlines()) if c["tool"] == tool]

    def edit(self, old: str, new: str) -> None:
        manifest = self.project / "flows.yaml"
        manifest.write_text(manifest.read_text().replace(old, new, 1))

    def deployed(self, name: str = "recsys-prod-train") -> str:
        return (self.project / f"deploy/argo/cronworkflow/{name}.yaml").read_text()

    def summary(self) -> str:
        path = self.root / "runner-temp" / "step-summary.md"
        return path.read_text() if path.exists() else ""


@pytest.fixture
def box(tmp_path: Path, github_api: GitHubServer) -> Sandbox:
    sandbox = Sandbox(tmp_path, github_api)
    github_api.add_pull_request(42, head=HEAD)
    # set up in-process (fast); the workflows below run flowplan as a program, as CI does
    assert Project(sandbox.project, REPO / "flows.yaml").run("apply", "--auto-approve").code == 0
    return sandbox


def log(job: JobResult) -> str:
    return "\n".join(f"== {s.name} ({s.code})\n{s.out}" for s in job.steps if s.ran)


def test_plan_workflow_comments_then_a_failed_plan_replaces_the_comment(box: Sandbox) -> None:
    box.edit("30 2 * * *", "0 4 * * *")
    job = box.run("flowplan-plan.yml", "plan")
    assert job.ok, log(job)
    assert [c["args"] for c in box.calls("pip")] == [
        ["cache", "dir"],
        ["install", "--disable-pip-version-check", "--quiet", str(REPO)],
    ]
    assert box.api.routes() == [f"GET {COMMENTS}", f"POST {COMMENTS}"]
    (body,) = box.api.comments(42)
    assert body.startswith(
        f"<!-- flowplan:plan:prod part 1/1 -->\n**flowplan plan** for commit `{HEAD[:12]}` · planned "
    )
    assert "[CI run](https://github.example/acme/recsys/actions/runs/777)" in body.splitlines()[1]
    assert "0 4 * * *" in body
    md = box.artifacts / "flowplan-plan-md"
    assert {p.name for p in md.iterdir()} == {"md", "stderr.txt", "exit-code", "plan-time", "pr-number"}
    assert (md / "exit-code").read_text() == "2\n" and (md / "pr-number").read_text() == "42\n"
    assert (box.artifacts / "flowplan-saved-plan" / "plan.bin").exists()
    assert "flowplan plan: `recsys` on branch `prod`" in box.summary()

    box.edit("0 4 * * *", "61 4 * * *")  # the next push breaks the manifest
    box.api.clear_requests()
    job = box.run("flowplan-plan.yml", "plan")
    assert not job.ok and job.step("Plan and comment").code == 1
    assert not job.step("Ask for a second reviewer when the plan destroys something").ran
    first = box.api.state.comments
    assert box.api.routes() == [f"GET {COMMENTS}", f"PATCH /repos/acme/recsys/issues/comments/{min(first)}"]
    (body,) = box.api.comments(42)
    assert body.startswith("<!-- flowplan:plan:prod part 1/1 -->\n**flowplan plan failed** for commit")
    assert 'cron "61 4 * * *"' in body
    assert "::error file=flows.yaml,line=21,col=11,title=flowplan plan::schedules.nightly.cron" in log(job)


@pytest.mark.slow  # each Action run starts flowplan as a program three times
def test_a_fork_plans_without_commenting_and_the_workflow_run_posts_it(box: Sandbox) -> None:
    box.event["pull_request"]["head"]["repo"]["full_name"] = "someone/recsys"
    box.edit("30 2 * * *", "0 4 * * *")
    job = box.run("flowplan-plan.yml", "plan")
    assert job.ok, log(job)
    assert box.api.requests() == []  # a fork's read-only token is never used to comment
    assert not (box.artifacts / "flowplan-saved-plan").exists()

    box.event = {
        "workflow_run": {
            "id": 555,
            "event": "pull_request",
            "head_sha": HEAD,
            "head_repository": {"full_name": "someone/recsys"},
        }
    }
    shutil.rmtree(box.root / "runner-temp")
    job = box.run("flowplan-plan-comment.yml", "post")
    assert job.ok, log(job)
    assert box.api.routes() == ["GET /repos/acme/recsys/pulls/42", f"GET {COMMENTS}", f"POST {COMMENTS}"]
    (body,) = box.api.comments(42)
    assert re.match(r"<!-- flowplan:plan:prod part 1/1 -->\n\*\*flowplan plan\*\* for commit `f{12}` · planned ", body)


@pytest.mark.slow
def test_apply_on_merge_applies_the_reviewed_plan_and_reports_on_the_pull_request(box: Sandbox) -> None:
    box.edit("30 2 * * *", "0 4 * * *")
    assert box.run("flowplan-plan.yml", "plan").ok
    box.api.add_run("flowplan-plan.yml", HEAD, run_id=4242)
    box.api.clear_requests()
    job = box.run("flowplan-apply.yml", "apply-reviewed-plan")
    assert job.ok, log(job)
    assert "0 4 * * *" in box.deployed()
    assert box.api.routes() == [
        "GET /repos/acme/recsys/actions/workflows/flowplan-plan.yml/runs",
        f"POST {COMMENTS}",
    ]
    assert f"head_sha={HEAD}&status=success" in box.api.requests()[0].path
    assert box.api.comments(42)[-1].startswith("<!-- flowplan:apply:prod part 1/1 -->\n**flowplan apply applied**")


@pytest.mark.slow
def test_apply_on_merge_refuses_a_stale_reviewed_plan(box: Sandbox) -> None:
    box.edit("30 2 * * *", "0 4 * * *")
    assert box.run("flowplan-plan.yml", "plan").ok
    box.edit("0 4 * * *", "0 5 * * *")  # main moved on after the review
    box.api.add_run("flowplan-plan.yml", HEAD)
    before = box.deployed()
    job = box.run("flowplan-apply.yml", "apply-reviewed-plan")
    assert not job.ok
    assert box.deployed() == before
    note = box.api.comments(42)[-1]
    assert "**flowplan apply FAILED (exit 1)**" in note and "manifest_digest" in note


@pytest.mark.slow
def test_apply_on_merge_without_a_reviewed_plan_fails(box: Sandbox) -> None:
    job = box.run("flowplan-apply.yml", "apply-reviewed-plan")
    assert not job.ok and "nothing reviewed to apply" in job.step("Find the reviewed plan").out
    assert not job.step("Apply the reviewed plan (refused if stale)").ran


@pytest.mark.slow
def test_replan_apply_applies_the_merged_manifest(box: Sandbox) -> None:
    box.edit("30 2 * * *", "0 4 * * *")
    job = box.run("flowplan-apply-replan.yml", "apply-fresh-plan")
    assert job.ok, log(job)
    assert "0 4 * * *" in box.deployed()
    assert "Apply complete" in box.api.comments(42)[-1]


def test_drift_workflow_opens_the_issue_and_closes_it_when_drift_clears(box: Sandbox) -> None:
    target = box.project / "deploy/argo/cronworkflow/recsys-prod-train.yaml"
    target.write_text(target.read_text().replace("suspend: false", "suspend: true"))
    job = box.run("flowplan-drift.yml", "drift")
    assert not job.ok and job.step("Check for drift and keep the issue current").code == 2
    assert box.api.routes() == ["GET /repos/acme/recsys/issues", "POST /repos/acme/recsys/issues"]
    issue = box.api.requests()[1].body
    assert issue["labels"] == ["flowplan-drift"] and "recsys-prod-train" in issue["body"]
    assert "::error title=flowplan drift::" in log(job)

    target.write_text(target.read_text().replace("suspend: true", "suspend: false"))
    box.api.clear_requests()
    job = box.run("flowplan-drift.yml", "drift")
    assert job.ok, log(job)
    number = max(box.api.state.issues)
    assert box.api.routes() == ["GET /repos/acme/recsys/issues", f"PATCH /repos/acme/recsys/issues/{number}"]
    assert box.api.state.issues[number]["state"] == "closed"


@pytest.mark.slow  # flowplan as a program starts in ~2 s here; CI runs these with -m slow
def test_gitlab_pipeline_pages_through_notes_and_keeps_no_saved_plan(box: Sandbox) -> None:
    pipeline = load(EXAMPLES / "gitlab" / ".gitlab-ci.yml")
    assert pipeline["flowplan:plan"]["artifacts"]["paths"] == ["plan-md/"]
    assert "python -m pip install" in "\n".join(pipeline["default"]["before_script"])
    script = "\n".join(pipeline["default"]["before_script"][:1] + pipeline["flowplan:plan"]["script"])
    box.edit("30 2 * * *", "0 4 * * *")
    env = {
        **box.env,
        "CI_API_V4_URL": "https://gitlab.example/api/v4",
        "CI_PROJECT_ID": "7",
        "CI_MERGE_REQUEST_IID": "3",
        "FLOWPLAN_NOTE_TOKEN": "stub",
        "FLOWPLAN_BRANCH": "prod",
        "FLOWPLAN_COMMENT_LIMIT": "1000000",
        "FLOWPLAN_COMMIT": "ab" * 20,
    }
    (box.answers / "notes.json").write_text("[]")
    proc = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script], cwd=box.project, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    curls = box.calls("curl")
    assert "page=1" in curls[0]["args"][-1]
    assert any("POST" in c["args"] for c in curls)
    assert not (box.project / "plan.bin").exists()

    env["FLOWPLAN_COMMIT"] = "main"  # an unpinned install is refused
    proc = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script], cwd=box.project, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 1 and "set FLOWPLAN_COMMIT" in proc.stderr
