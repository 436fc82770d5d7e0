"""Bugs the reliability trials found, each pinned by a small, fast test (the fix is named in each docstring)."""

from __future__ import annotations

import json

import pytest

from tests.reliability.harness import StepFunctionsTarget, Target
from tests.support.proxy import FaultRule, Respond


@pytest.fixture
def aws_target(request: pytest.FixtureRequest, tmp_path, monkeypatch) -> StepFunctionsTarget:  # type: ignore[no-untyped-def]
    from tests.reliability.conftest import make_target

    made = make_target("stepfunctions", request, tmp_path, monkeypatch)
    assert isinstance(made, StepFunctionsTarget)
    return made


@pytest.mark.parametrize(
    "operation",
    [
        "batch:RegisterJobDefinition",
        pytest.param("states:CreateStateMachine", marks=pytest.mark.slow),
        pytest.param("scheduler:CreateSchedule", marks=pytest.mark.slow),
    ],
)
def test_a_throttled_non_idempotent_create_is_retried(aws_target: StepFunctionsTarget, operation: str) -> None:
    """backends/stepfunctions/writer.py ``_send_once``: a throttled create was never processed, so it is sent
    again after a backoff (it used to fail the resource at once, "still failed after retries", after one try)."""
    aws_target.write(2)
    aws_target.proxy.rules.append(
        FaultRule(Respond.aws_json(400, "ThrottlingException", "Rate exceeded"), key=operation, times=1)
    )
    result = aws_target.apply()
    assert result.code == 0, result.text
    assert aws_target.proxy.fault_types() == {"429": 1}
    assert aws_target.proxy.retries() == {operation: 1}
    assert aws_target.converged() == []


def test_a_disk_error_on_the_files_backend_is_a_clear_error(
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,  # type: ignore[no-untyped-def]
) -> None:
    """backends/files.py ``_atomic_write``: an OS error writing the inventory (disk full, EIO) used to escape as
    "flowplan failed unexpectedly (OSError ...) please report it"; it is a BackendError naming the file now,
    and a rerun converges."""
    import errno

    from backends import files as files_backend
    from tests.reliability.conftest import make_target

    target: Target = make_target("files", request, tmp_path, monkeypatch)
    target.write(3)
    original = files_backend._write_bytes

    def full(path, data, **kwargs):  # type: ignore[no-untyped-def]
        if ".json" in path.name:  # the inventory, or the staged copy its compare-and-swap renames into place
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        original(path, data, **kwargs)

    monkeypatch.setattr(files_backend, "_write_bytes", full)
    failed = target.apply()
    assert failed.code == 1
    assert "unexpectedly" not in failed.err and "Traceback" not in failed.err
    assert "cannot write" in failed.err and "No space left on device" in failed.err
    monkeypatch.setattr(files_backend, "_write_bytes", original)
    assert target.apply().code == 0
    assert target.converged() == []


def test_an_apply_with_nothing_to_change_records_what_a_killed_apply_left_pending(files_target: Target) -> None:
    """planner/applying (``Transaction.repair``, ``inventory_repairs``): an apply killed after its last write
    left ``pending-*`` intents; the plan was empty, so no apply ever stored them resolved and the inventory
    disagreed with what is live forever. Now an apply with nothing to change stores them, under the lock."""
    import json

    target = files_target
    target.write(3)
    assert target.apply().code == 0
    path = next((target.root / ".flowplan").rglob("*.json"))
    data = json.loads(path.read_text())
    first = sorted(data["entries"])[0]
    data["entries"][first]["state"] = "pending-update"  # confirmed by the next run: it is live
    data["entries"]["local.WorkflowTemplate.ml/rel-prod-gone"] = {"hash": "0" * 64, "state": "pending-delete"}
    path.write_text(json.dumps(data))
    assert target.run("plan", "--detailed-exitcode").code == 0
    assert target.converged(check_plan=False) != []
    repaired = target.apply()
    assert repaired.code == 0, repaired.text
    assert "Recorded the inventory of local again" in repaired.err
    assert target.converged() == []
    before = path.read_bytes()
    again = target.apply()
    assert again.code == 0 and "Recorded" not in again.err
    assert path.read_bytes() == before


def test_temporary_files_a_killed_apply_left_are_reported_and_removed(files_target: Target) -> None:
    """backends/files.py ``leftovers``: a SIGKILL during parallel writes left ``.NAME.XXXXXXXX.tmp`` files in
    the GitOps directory for good. The plan now warns about them and the next apply removes them (an apply with
    changes when it opens its writer, one without changes under the lock)."""
    target = files_target
    target.write(3)
    assert target.apply().code == 0
    left = target.root / "deploy/ml/cronworkflow/.rel-prod-f000.yaml.ab12cd_9.tmp"
    left.write_text("half a file")
    also = target.root / ".flowplan/local/.rel-prod.json.zz99zz99.tmp"
    also.write_text("{")
    plan = target.run("plan", "--detailed-exitcode")
    assert plan.code == 0, plan.text
    assert "2 temporary file(s) an interrupted apply left behind" in plan.out
    assert target.converged(check_plan=False) != []
    tidy = target.apply()
    assert tidy.code == 0, tidy.text
    assert "Removed 2 temporary file(s)" in tidy.err
    assert not left.exists() and not also.exists()
    assert target.converged() == []


def test_a_state_machine_whose_delete_fails_stays_owned_and_is_deleted_next_time(
    aws_target: StepFunctionsTarget,
) -> None:
    """backends/stepfunctions/writer.py ``_delete_statemachine``: the machine's tags were removed *before* the
    delete, so a delete that failed (or a run killed in between) left an untagged machine that no later run
    ever saw as its own: leaked for good. Tags now go after the delete."""
    aws_target.write(4)
    assert aws_target.apply().code == 0
    aws_target.write(4, variant=1)  # drops flow f003
    aws_target.proxy.rules.append(
        FaultRule(Respond.aws_json(500, "InternalFailure", "injected"), key="states:DeleteStateMachine")
    )
    failed = aws_target.apply()
    assert failed.code == 1, failed.text
    assert "rel-prod-f003" in failed.err
    aws_target.proxy.rules.clear()
    assert aws_target.apply().code == 0
    assert aws_target.converged() == []


def test_a_sensitive_value_is_not_quoted_by_a_manifest_error(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """planner/manifest/loader.py ``_redacted``: a sensitive var's value that fails validation (here as a cron)
    was printed in the error message, with and without --debug; planner/cli/__init__.py: --debug tracebacks are
    scrubbed like the message."""
    from planner.cli import run

    path = tmp_path / "flows.yaml"
    path.write_text(
        "version: 1\nproject: shop\nvars:\n  token: {sensitive: true}\nschedules:\n  s: {cron: '{{ vars.token }}'}\n"
        "flows:\n  hello:\n    image: python\n    schedule: s\n    steps:\n      start:\n        command: [a]\n"
    )
    for debug in (False, True):
        assert run(["plan", "-f", str(path), "--var", "token=hunter2-SECRET-value"], debug=debug) == 1
        captured = capsys.readouterr()
        assert "hunter2" not in captured.out + captured.err
        assert 'cron "(sensitive)"' in captured.err


def test_credentials_a_backend_loaded_are_scrubbed_from_output() -> None:
    """backends/base.py ``remember_credential`` + planner/cli/redact.py: a token or key a server's message quotes
    never reaches the output (the transport trials check it end to end)."""
    from planner.cli.redact import scrub
    from planner.contract import CREDENTIALS, remember_credential

    remember_credential("tok-0123456789abcdef")
    remember_credential("short")  # not a credential: too short to scrub safely
    try:
        assert scrub("401: bad token tok-0123456789abcdef (short)") == "401: bad token (sensitive) (short)"
    finally:
        CREDENTIALS.discard("tok-0123456789abcdef")


def test_a_duplicate_job_definition_revision_is_planned_and_removed(aws_target: StepFunctionsTarget) -> None:
    """backends/stepfunctions/reader.py + writer.py ``_one_revision``: a RegisterJobDefinition whose answer was
    lost past the client's timeout lands after the writer, having read back nothing yet, sent it again: two
    ACTIVE revisions with one content. The reader showed only the newest, so the plan was empty and the
    duplicate stayed for good. Now surplus ACTIVE revisions show in the plan and the update keeps one."""
    aws_target.write(2)
    assert aws_target.apply().code == 0
    batch = aws_target.aws.client("batch")
    (job,) = [
        j
        for j in batch.describe_job_definitions(status="ACTIVE")["jobDefinitions"]
        if "f000-start" in j["jobDefinitionName"]
    ]
    batch.register_job_definition(
        jobDefinitionName=job["jobDefinitionName"],
        type=job["type"],
        containerProperties=job["containerProperties"],
        platformCapabilities=job.get("platformCapabilities", ["EC2"]),
        tags=job["tags"],
    )
    plan = json.loads(aws_target.run("plan", "--format", "json").out)
    assert [(c["action"], c["kind"]) for c in plan["changes"]] == [("update", "JobDefinition")]
    assert aws_target.apply().code == 0
    assert aws_target.converged() == []


def test_racing_file_locks_always_name_their_holder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """backends/files.py ``FileLock.acquire``: the lock file was created empty and written after, so a racing
    apply could read it half-made and report "held by unknown (unreadable lock file) on host ? (pid 0)"
    (found by the five-racer concurrency trial). It is now linked into place complete."""
    import threading
    import time as clock

    from backends import files as files_backend
    from backends.files import FileLock
    from planner.contract import LockInfo
    from planner.errors import LockError

    path = tmp_path / "rel-prod.lock"
    problems: list[str] = []
    stop = clock.monotonic() + 2.0

    def race(name: str) -> None:
        lock = FileLock(path, "files in deploy/", files_backend._atomic_write)
        while clock.monotonic() < stop:
            info = LockInfo(name, "host", 1, "apply", clock.time(), clock.time() + 60)
            try:
                lock.acquire(info)
            except LockError as exc:
                if "unknown" in exc.message:
                    problems.append(exc.message)
                continue
            lock.release(info)

    threads = [threading.Thread(target=race, args=(f"racer-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []
