"""``flowplan github ...`` against a local GitHub API: the exact calls and bodies of each CI situation.

flowplan runs for real (in-process, on the files backend) to make the plans, errors and drift
reports; the GitHub side is tests/support/github_server.py, which records every request.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.ci.conftest import TOKEN
from tests.planner.loop import Project
from tests.support.github_server import GitHubServer

COMMIT = "c0ffee" + "1" * 34
RUN = "[CI run](https://github.example/acme/recsys/actions/runs/777)"
COMMENTS = "/repos/acme/recsys/issues/42/comments"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    (tmp_path / "repo").mkdir()
    project = Project(tmp_path / "repo")
    assert project.run("apply", "--auto-approve").code == 0
    return project


def plan(project: Project, *extra: str, limit: int = 2000) -> tuple[int, list[str], str]:
    """Plan as the Action does; the Markdown parts and the plan's own time."""
    result = project.run(
        "plan", "--detailed-exitcode", "--out", "plan.bin", "--format", "markdown", "--split", "md",
        "--comment-limit", str(limit), *extra,
    )  # fmt: skip
    parts = [p.read_text() for p in sorted((project.root / "md").glob("plan-[0-9][0-9][0-9].md"))]
    created = json.loads((project.root / "plan.bin").read_text())["payload"]["plan"]["created_at"]
    return result.code, parts, created


def comment(project: Project, code: int, *extra: str) -> tuple[int, str]:
    result = project.run(
        "github", "comment", "--exit-code", str(code), "--pr", "42", "--commit", COMMIT,
        "--parts", "md", "--plan", "plan.bin", *extra,
    )  # fmt: skip
    return result.code, result.err


def test_first_plan_posts_every_part_with_marker_commit_time_and_run(
    project: Project, github_api: GitHubServer
) -> None:
    github_api.add_pull_request(42)
    project.edit("default: ghcr.io/acme", "default: ghcr.io/acme-mirror")  # every WorkflowTemplate changes
    code, parts, created = plan(project)
    assert code == 2 and len(parts) >= 2
    assert comment(project, 2)[0] == 0

    n = len(parts)
    assert github_api.routes() == [f"GET {COMMENTS}"] + [f"POST {COMMENTS}"] * n
    assert github_api.requests()[0].path == COMMENTS + "?per_page=100"
    assert all(r.authorized for r in github_api.requests())
    expected = [
        f"<!-- flowplan:plan:prod part {k}/{n} -->\n"
        f"**flowplan plan** for commit `{COMMIT[:12]}` · planned {created} · {RUN}\n\n{part}"
        for k, part in enumerate(parts, 1)
    ]
    assert [r.body for r in github_api.requests()[1:]] == [{"body": body} for body in expected]
    assert github_api.comments(42) == expected


def test_next_push_edits_parts_in_place_and_deletes_leftovers(project: Project, github_api: GitHubServer) -> None:
    github_api.add_pull_request(42)
    other = github_api.add_comment(42, "LGTM, ship it")
    ids = [github_api.add_comment(42, f"<!-- flowplan:plan:prod part {k}/4 -->\nold part {k}") for k in (1, 2, 3, 4)]
    targeted = github_api.add_comment(42, "<!-- flowplan:plan:prod+target-0a1b2c3d part 1/1 -->\nold targeted")
    project.edit("30 2 * * *", "0 4 * * *")
    code, parts, _ = plan(project)
    assert code == 2 and len(parts) == 1
    github_api.clear_requests()
    assert comment(project, 2)[0] == 0

    assert github_api.routes() == [
        f"GET {COMMENTS}",
        f"PATCH /repos/acme/recsys/issues/comments/{ids[0]}",
        f"DELETE /repos/acme/recsys/issues/comments/{ids[1]}",
        f"DELETE /repos/acme/recsys/issues/comments/{ids[2]}",
        f"DELETE /repos/acme/recsys/issues/comments/{ids[3]}",
    ]
    bodies = github_api.comments(42)
    assert bodies[0] == "LGTM, ship it" and other
    assert bodies[1].startswith("<!-- flowplan:plan:prod part 1/1 -->\n**flowplan plan** for commit")
    assert bodies[1].endswith(parts[0])
    assert bodies[2] == "<!-- flowplan:plan:prod+target-0a1b2c3d part 1/1 -->\nold targeted" and targeted


def test_a_longer_plan_grows_the_parts_across_pages_of_comments(project: Project, github_api: GitHubServer) -> None:
    github_api.add_pull_request(42)
    for index in range(130):  # a long discussion: our part 1 sits on the second page of 100
        github_api.add_comment(42, f"review comment {index}")
    first = github_api.add_comment(42, "<!-- flowplan:plan:prod part 1/1 -->\nold plan")
    project.edit("default: ghcr.io/acme", "default: ghcr.io/acme-mirror")
    code, parts, _ = plan(project)
    assert code == 2 and len(parts) >= 3
    assert comment(project, 2)[0] == 0

    requests = github_api.requests()
    assert [r.path for r in requests[:2]] == [
        COMMENTS + "?per_page=100",
        COMMENTS + "?per_page=100&page=2",
    ]
    assert [r.route for r in requests[2:]] == [f"PATCH /repos/acme/recsys/issues/comments/{first}"] + [
        f"POST {COMMENTS}"
    ] * (len(parts) - 1)
    ours = [b for b in github_api.comments(42) if b.startswith("<!-- flowplan:plan:prod ")]
    assert [b.splitlines()[0] for b in ours] == [
        f"<!-- flowplan:plan:prod part {k}/{len(parts)} -->" for k in range(1, len(parts) + 1)
    ]


def test_a_failed_plan_replaces_the_plan_with_one_error_comment(project: Project, github_api: GitHubServer) -> None:
    github_api.add_pull_request(42)
    old = [github_api.add_comment(42, f"<!-- flowplan:plan:prod part {k}/2 -->\nstale plan") for k in (1, 2)]
    project.edit("30 2 * * *", "61 2 * * *")
    result = project.run("plan", "--detailed-exitcode", "--format", "markdown", "--split", "md")
    assert result.code == 1
    (project.root / "stderr.txt").write_text(result.err)
    code, _ = comment(project, 1, "--errors", "stderr.txt")
    assert code == 0

    assert github_api.routes() == [
        f"GET {COMMENTS}",
        f"PATCH /repos/acme/recsys/issues/comments/{old[0]}",
        f"DELETE /repos/acme/recsys/issues/comments/{old[1]}",
    ]
    (body,) = github_api.comments(42)
    lines = body.splitlines()
    assert lines[0] == "<!-- flowplan:plan:prod part 1/1 -->"
    assert re.fullmatch(
        rf"\*\*flowplan plan failed\*\* for commit `{COMMIT[:12]}` · at \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ · "
        + re.escape(RUN),
        lines[1],
    )
    assert "No plan could be made for this commit" in body
    assert 'flows.yaml:21:11: schedules.nightly.cron: cron "61 2 * * *"' in body
    assert "stale plan" not in body

    # fixed on the next push: the error comment becomes the plan again, edited in place
    project.edit("61 2 * * *", "0 4 * * *")
    github_api.clear_requests()
    code, parts, _ = plan(project)
    assert code == 2
    assert comment(project, 2)[0] == 0
    assert github_api.routes() == [f"GET {COMMENTS}", f"PATCH /repos/acme/recsys/issues/comments/{old[0]}"]
    assert github_api.comments(42)[0].endswith(parts[0])


def test_a_targeted_plan_has_its_own_marker_and_says_it_is_partial(project: Project, github_api: GitHubServer) -> None:
    github_api.add_pull_request(42)
    full = github_api.add_comment(42, "<!-- flowplan:plan:prod part 1/1 -->\nthe full plan")
    project.edit("30 2 * * *", "0 4 * * *")
    code, parts, _ = plan(project, "--target", "train")
    assert code == 2
    assert comment(project, 2, "--target", "train")[0] == 0

    assert github_api.routes() == [f"GET {COMMENTS}", f"POST {COMMENTS}"]
    full_body, targeted = github_api.comments(42)
    assert full_body == "<!-- flowplan:plan:prod part 1/1 -->\nthe full plan" and full
    assert re.match(r"<!-- flowplan:plan:prod\+target-[0-9a-f]{8} part 1/1 -->\n", targeted)
    assert "**Partial plan**: only `train` (`--target`) was planned" in targeted
    assert targeted.endswith(parts[0])


def test_the_marker_key_names_the_manifest_directory(project: Project, github_api: GitHubServer) -> None:
    github_api.add_pull_request(42)
    project.edit("30 2 * * *", "0 4 * * *")
    plan(project)
    assert comment(project, 2, "--directory", "infra/flows/", "--branch", "staging")[0] == 0
    assert github_api.comments(42)[0].startswith("<!-- flowplan:plan:infra/flows:staging part 1/1 -->\n")


def test_apply_posts_its_result_on_the_merged_pull_request(project: Project, github_api: GitHubServer) -> None:
    github_api.add_pull_request(42)
    project.edit("30 2 * * *", "0 4 * * *")
    result = project.run("apply", "--auto-approve", "--no-color")
    assert result.code == 0
    (project.root / "output.txt").write_text(result.out + result.err)
    code, _ = comment(project, 0, "--command", "apply", "--output", "output.txt")
    assert code == 0

    assert github_api.routes() == [f"POST {COMMENTS}"]
    (body,) = github_api.comments(42)
    assert body.startswith("<!-- flowplan:apply:prod part 1/1 -->\n**flowplan apply applied** for commit")
    assert "Apply complete" in body and RUN in body


def test_no_pull_request_means_no_comment(project: Project, github_api: GitHubServer, tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"ref": "refs/heads/main", "after": COMMIT}))
    project.edit("30 2 * * *", "0 4 * * *")
    plan(project)
    result = project.run("github", "comment", "--exit-code", "2", "--parts", "md")
    assert result.code == 0 and "not a pull request" in result.err
    assert github_api.requests() == []


def test_the_pull_request_number_comes_from_the_event(
    project: Project, github_api: GitHubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    github_api.add_pull_request(7)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "synchronize", "number": 7, "pull_request": {"number": 7}}))
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    monkeypatch.setenv("GITHUB_SHA", "ab" * 20)
    project.edit("30 2 * * *", "0 4 * * *")
    plan(project)
    result = project.run("github", "comment", "--exit-code", "2", "--parts", "md", "--plan", "plan.bin")
    assert result.code == 0, result.err
    assert github_api.routes() == [
        "GET /repos/acme/recsys/issues/7/comments",
        "POST /repos/acme/recsys/issues/7/comments",
    ]
    assert "for commit `abababababab`" in github_api.comments(7)[0]


def test_a_posted_fork_plan_must_match_the_pull_requests_head(project: Project, github_api: GitHubServer) -> None:
    github_api.add_pull_request(42, head=COMMIT)
    project.edit("30 2 * * *", "0 4 * * *")
    plan(project)
    code, err = comment(project, 2, "--expect-head-sha", "9" * 40)
    assert code == 1 and "pull request #42 is at" in err
    assert github_api.routes() == ["GET /repos/acme/recsys/pulls/42"]
    github_api.clear_requests()
    assert comment(project, 2, "--expect-head-sha", COMMIT)[0] == 0
    assert github_api.routes() == ["GET /repos/acme/recsys/pulls/42", f"GET {COMMENTS}", f"POST {COMMENTS}"]


@pytest.mark.parametrize(
    ("method", "status", "message", "call"),
    [
        ("GET", 403, "Resource not accessible by integration", f"GET {COMMENTS}?per_page=100: GitHub answered 403"),
        ("POST", 422, "Validation Failed", f"POST {COMMENTS}: GitHub answered 422 (Validation Failed)"),
        ("GET", 502, "Bad Gateway", "GitHub answered 502"),
    ],
)
def test_a_github_failure_names_the_call_and_status_never_the_token(
    project: Project, github_api: GitHubServer, method: str, status: int, message: str, call: str
) -> None:
    github_api.add_pull_request(42)
    project.edit("30 2 * * *", "0 4 * * *")
    plan(project)
    github_api.fail_next(method, status, message)
    code, err = comment(project, 2)
    assert code == 1
    assert call in err and message in err
    assert TOKEN not in err and "Traceback" not in err


def test_missing_token_and_unreachable_api_are_one_clear_error(
    project: Project, github_api: GitHubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.edit("30 2 * * *", "0 4 * * *")
    plan(project)
    monkeypatch.delenv("GITHUB_TOKEN")
    code, err = comment(project, 2)
    assert code == 1 and "GITHUB_TOKEN is not set" in err
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    code, err = comment(project, 2)
    assert code == 1 and f"GET {COMMENTS}?per_page=100: cannot reach GitHub" in err
    assert TOKEN not in err and "Traceback" not in err


def test_drift_issue_is_opened_updated_closed_and_reopened(project: Project, github_api: GitHubServer) -> None:
    github_api.add_pull_request(3)  # pull requests are issues too; never taken for the drift issue
    github_api.add_issue(title="unrelated", labels=("flowplan-drift",), body="<!-- flowplan:drift:other/prod -->\nx")
    target = project.root / "deploy/argo/cronworkflow/recsys-prod-train.yaml"

    def drift_run() -> tuple[int, str]:
        result = project.run("drift", "--format", "markdown")
        (project.root / "drift.md").write_text(result.out)
        run = project.run(
            "github", "drift-issue", "--exit-code", str(result.code), "--report", "drift.md", "--commit", COMMIT
        )
        assert run.code == 0, run.err
        return result.code, result.out

    labelled = "GET /repos/acme/recsys/issues"
    assert drift_run()[0] == 0  # in sync, no issue: only the lookup
    assert github_api.routes() == [labelled]
    assert github_api.requests()[0].path == "/repos/acme/recsys/issues?labels=flowplan-drift&state=all&per_page=100"

    target.write_text(target.read_text().replace("suspend: false", "suspend: true"))
    github_api.clear_requests()
    code, report = drift_run()
    assert code == 2
    assert github_api.routes() == [labelled, "POST /repos/acme/recsys/issues"]
    created = github_api.requests()[1].body
    assert created["title"] == "flowplan: drift in recsys on branch prod"
    assert created["labels"] == ["flowplan-drift"]
    assert created["body"] == (
        f"<!-- flowplan:drift:recsys/prod -->\n**flowplan drift found** for commit `{COMMIT[:12]}` · "
        + re.search(r"at \S+Z", created["body"]).group(0)  # type: ignore[union-attr]
        + f" · {RUN}\n\n{report.strip()}\n"
    )
    number = max(github_api.state.issues)

    github_api.clear_requests()
    assert drift_run()[0] == 2  # still drifted: the same issue is edited, no comment, no new issue
    assert github_api.routes() == [labelled, f"PATCH /repos/acme/recsys/issues/{number}"]
    assert set(github_api.requests()[1].body) == {"body"}

    target.write_text(target.read_text().replace("suspend: true", "suspend: false"))
    github_api.clear_requests()
    assert drift_run()[0] == 0  # cleared: closed
    assert github_api.routes() == [labelled, f"PATCH /repos/acme/recsys/issues/{number}"]
    closing = github_api.requests()[1].body
    assert closing["state"] == "closed" and closing["state_reason"] == "completed"
    assert "**flowplan drift cleared**" in closing["body"] and "In sync" in closing["body"]

    target.write_text(target.read_text().replace("suspend: false", "suspend: true"))
    github_api.clear_requests()
    assert drift_run()[0] == 2  # back: the closed issue is reopened, not a second one
    assert github_api.routes() == [labelled, f"PATCH /repos/acme/recsys/issues/{number}"]
    assert github_api.requests()[1].body["state"] == "open"
    assert sum(1 for i in github_api.state.issues.values() if i["title"].startswith("flowplan: drift in recsys")) == 1


def test_a_failed_drift_check_leaves_the_issue_alone(project: Project, github_api: GitHubServer) -> None:
    (project.root / "drift.md").write_text("")
    result = project.run("github", "drift-issue", "--exit-code", "1", "--report", "drift.md")
    assert result.code == 0 and "left as it is" in result.err
    assert github_api.requests() == []


def test_annotations_put_manifest_errors_at_their_line(project: Project) -> None:
    project.edit("30 2 * * *", "61 2 * * *")
    result = project.run("validate")
    assert result.code == 1
    (project.root / "stderr.txt").write_text(result.err)
    out = project.run(
        "github", "annotate", "--errors", "stderr.txt", "--directory", "infra", "--title", "flowplan plan"
    )
    assert out.code == 0
    assert out.out.splitlines() == [
        "::error file=infra/flows.yaml,line=21,col=11,title=flowplan plan::"
        'schedules.nightly.cron: cron "61 2 * * *": minute field "61": values are 0-59'
    ]
    (project.root / "stderr.txt").write_text("Error: cannot reach the cluster: connection refused\n50% done\n")
    out = project.run("github", "annotate", "--errors", "stderr.txt")
    assert out.out == "::error title=flowplan::Error: cannot reach the cluster: connection refused%0A50%25 done\n"


def test_outputs_and_job_summary(project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outputs, summary = tmp_path / "output", tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    project.edit("30 2 * * *", "0 4 * * *")
    project.edit("  report:", "  old-report:")  # a flow renamed: its objects are replaced or deleted
    code, _, created = plan(project)
    assert code == 2
    result = project.run(
        "github", "outputs", "--exit-code", "2", "--plan", "plan.bin", "--markdown", "md/plan-full.md",
        "--record", "md",
    )  # fmt: skip
    assert result.code == 0, result.err
    values = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    summary_counts = json.loads((project.root / "plan.bin").read_text())["payload"]["plan"]["summary"]
    assert values["exit-code"] == "2" and values["plan-time"] == created
    for name in ("create", "update", "replace", "delete"):
        assert values[name] == str(summary_counts[name])
    assert values["has-changes"] == "true"
    assert values["has-destroys"] == ("true" if summary_counts["delete"] + summary_counts["replace"] else "false")
    assert summary.read_text() == (project.root / "md/plan-full.md").read_text().rstrip("\n") + "\n"
    assert (project.root / "md/exit-code").read_text() == "2\n"

    outputs.write_text("")
    (project.root / "stderr.txt").write_text("Error: the manifest has 1 problem\n")
    result = project.run("github", "outputs", "--exit-code", "1", "--plan", "plan.bin", "--errors", "stderr.txt")
    values = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert values["exit-code"] == "1" and values["has-changes"] == "false" and values["create"] == "0"
    assert summary.read_text().endswith(
        "### flowplan failed (exit 1)\n\n```text\nError: the manifest has 1 problem\n```\n"
    )


def test_a_huge_drift_report_is_cut_to_fit_an_issue(github_api: GitHubServer) -> None:
    from planner.cli.github.api import GitHub
    from planner.cli.github.comments import RunInfo
    from planner.cli.github.drift import DriftReport, sync_drift_issue

    report = DriftReport.parse("<!-- flowplan-drift: recsys/prod -->\n" + "| `x` | changed |\n" * 20_000, 2)
    said = sync_drift_issue(GitHub.from_env(), report, RunInfo(COMMIT, "at now", None), "flowplan-drift")
    assert said.startswith("drift; opened issue #")
    body = github_api.requests()[-1].body["body"]
    assert len(body) <= 65_536 and body.endswith("(cut to fit an issue; the whole report is in the CI run)\n")
