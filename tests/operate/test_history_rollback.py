"""Three applies, ``flowplan history``, ``rollback --to 1`` — on the files backend, the Kubernetes API
test server and moto, with the same scenario: (1) deploy, (2) change a flow, (3) add a flow.

The rollback plan must be the reverse of the forward plans of applies 2 and 3 (each planned and
shown before it was applied), and after the rollback a plan of the first manifest must be empty.
On Step Functions the ``live`` alias must run the version revision 1 published again, with no new
version published for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.backends.argo.test_live_support import DIGEST_FLOW, Cluster
from tests.backends.stepfunctions.helpers import Workspace
from tests.integration.worlds import FilesWorld
from tests.operate.helpers import parse
from tests.support.aws_fixtures import AwsEnv

REVERSE = {"create": "delete", "delete": "create", "update": "update", "replace": "replace"}
EXTRA_SFN_FLOW = """  extra:
    image: busybox
    steps:
      start: {command: [echo, extra], resources: {cpu: "1", memory: 1Gi}}
"""


@dataclass
class Stand:
    """One backend's way to run flowplan and edit its manifest, and the scenario's two edits."""

    name: str
    run: Callable[..., Any]
    manifest: Path
    change: tuple[str, str]
    add: tuple[str, str]
    aws: AwsEnv | None = None

    def edit(self, old: str, new: str) -> None:
        text = self.manifest.read_text()
        assert old in text, old
        self.manifest.write_text(text.replace(old, new, 1))


@pytest.fixture(params=["files", "argo", "stepfunctions"])
def stand(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stand]:
    nightly = ('cron: "30 2 * * *"', 'cron: "45 3 * * *"')
    digest = (
        "\nflows:\n",
        "\nflows:\n" + DIGEST_FLOW.lstrip("\n").replace("    triggers:\n      - event: raw-data-landed\n", ""),
    )
    if request.param == "files":
        world = FilesWorld(tmp_path)
        yield Stand("files", world.run, world.manifest, nightly, digest)
    elif request.param == "argo":
        cluster: Cluster = request.getfixturevalue("cluster")
        yield Stand("argo", cluster.flowplan, cluster.manifest, nightly, digest)
    else:
        tiny: Workspace = request.getfixturevalue("tiny")
        retries = (
            'start: {command: [echo, up], resources: {cpu: "1", memory: 1Gi}}',
            'start: {command: [echo, up], resources: {cpu: "1", memory: 1Gi}, retries: 2}',
        )
        yield Stand(
            "stepfunctions", tiny.run, tiny.manifest, retries, ("\nflows:\n", "\nflows:\n" + EXTRA_SFN_FLOW), tiny.aws
        )


def _changes(stand: Stand) -> dict[str, str]:
    result = stand.run("plan", "--format", "json")
    assert result.code == 0, result.text
    return {c["address"]: c["action"] for c in parse(result.out)["changes"]}


def _apply(stand: Stand, commit: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Plan (what will change), then apply with ``commit`` as the git commit; returns the plan's changes."""
    monkeypatch.setenv("FLOWPLAN_GIT_COMMIT", commit * 40)
    forward = _changes(stand)
    applied = stand.run("apply", "--auto-approve")
    assert applied.code == 0, applied.text
    return forward


def test_history_lists_three_revisions_and_rollback_reverses_the_later_two(
    stand: Stand, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWPLAN_ACTOR", "ci-bot")
    first_manifest = stand.manifest.read_text()
    _apply(stand, "a", monkeypatch)
    stand.edit(*stand.change)
    second = _apply(stand, "b", monkeypatch)
    stand.edit(*stand.add)
    third = _apply(stand, "c", monkeypatch)
    assert set(second.values()) == {"update"} and set(third.values()) == {"create"}

    result = stand.run("history", "--format", "json")
    assert result.code == 0, result.text
    (rows,) = parse(result.out)["backends"].values()
    assert [r["number"] for r in rows] == [3, 2, 1]
    assert [r["git_commit"] for r in rows] == ["c" * 40, "b" * 40, "a" * 40]
    assert len({r["manifest_digest"] for r in rows}) == 3 and all(len(r["manifest_digest"]) == 64 for r in rows)
    assert {r["who"] for r in rows} == {"ci-bot"}
    assert {c["address"]: c["action"] for c in rows[0]["changes"]} == third
    text = stand.run("history").out
    assert f"#2  {rows[1]['time']}  by ci-bot  commit bbbbbbbbbbbb  manifest {rows[1]['manifest_digest'][:12]}" in text

    plan = stand.run("rollback", "--to", "1", "--plan-only", "--format", "json")
    assert plan.code == 0, plan.text
    document = parse(plan.out)
    assert document["rollback"]["undoes"] == [2, 3]
    expected = {address: REVERSE[action] for address, action in {**second, **third}.items()}
    assert {c["address"]: c["action"] for c in document["plan"]["changes"]} == expected

    rolled = stand.run("rollback", "--to", "1", "--auto-approve")
    assert rolled.code == 0, rolled.text
    assert "recorded as revision 4" in rolled.err

    # the first revision's manifest plans nothing: what is deployed is what it describes
    stand.manifest.write_text(first_manifest)
    again = stand.run("plan", "--detailed-exitcode")
    assert again.code == 0, again.text
    newest = parse(stand.run("history", "--format", "json").out)["backends"]
    (latest, *_) = next(iter(newest.values()))
    assert (latest["number"], latest["same_manifest_as"], latest["git_commit"]) == (4, 1, "a" * 40)

    if stand.aws is not None:
        sfn = stand.aws.client("stepfunctions")
        arn = f"arn:aws:states:{stand.aws.region}:{stand.aws.account}:stateMachine:tiny-prod-up"
        alias = sfn.describe_state_machine_alias(stateMachineAliasArn=f"{arn}:live")
        assert [r["stateMachineVersionArn"] for r in alias["routingConfiguration"]] == [f"{arn}:1"]
        assert "moved back" not in rolled.err and f"the live alias runs {arn}:1 again" in rolled.err
        with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
            sfn.describe_state_machine(stateMachineArn=f"{arn}:3")  # nothing new was published
        assert json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"]) == json.loads(
            sfn.describe_state_machine(stateMachineArn=f"{arn}:1")["definition"]
        )


def test_rollback_refuses_an_unknown_revision_and_a_revision_without_bodies(tmp_path: Path) -> None:
    world = FilesWorld(tmp_path)
    assert world.apply().code == 0
    missing = world.run("rollback", "--to", "7")
    assert missing.code == 1 and "has no revision 7 (revisions kept: 1)" in missing.err
    state_file = next((tmp_path / ".flowplan" / "local").glob("recsys.prod.json"))
    state = json.loads(state_file.read_text())
    state["revisions"][0].pop("bodies")
    state_file.write_text(json.dumps(state))
    old = world.run("rollback", "--to", "1")
    assert old.code == 1 and "revision 1 kept no bodies" in old.err
    assert world.run("rollback").code == 1


def test_a_rollback_reuses_a_sensitive_value_only_where_its_hash_matches(cluster: Cluster) -> None:
    old, new = "sEnTiNeL-one-7f3a", "sEnTiNeL-two-9c1b"
    fetch = "        command: [python, -m, ingest.fetch]\n"
    cluster.edit(fetch, fetch + f"        env:\n          TOKEN: {{value: {old}, sensitive: true}}\n")
    assert cluster.apply().code == 0  # revision 1: the old token
    cluster.edit('cron: "30 2 * * *"', 'cron: "45 3 * * *"')
    assert cluster.apply().code == 0  # revision 2: another schedule, the same token
    cluster.edit(old, new)  # the manifest moves on to a new token, not applied yet

    # the manifest's token is not revision 1's, the deployed one is: it is put back, nothing else changes
    plan = cluster.flowplan("rollback", "--to", "1", "--plan-only", "--format", "json")
    assert plan.code == 0, plan.text
    changes = {c["address"]: c["action"] for c in parse(plan.out)["plan"]["changes"]}
    assert changes == {"cluster.CronWorkflow.ml-test/recsys-prod-train": "update"}

    assert cluster.apply().code == 0  # revision 3 deploys the new token: revision 1's is nowhere any more
    refused = cluster.flowplan("rollback", "--to", "1", "--auto-approve")
    assert refused.code == 1
    assert "cluster.WorkflowTemplate.ml-test/recsys-prod-ingest at /spec/templates/" in refused.err
    assert "flowplan keeps only their hashes" in refused.err
    assert old not in refused.text and new not in refused.text
    template = cluster.server.get_object("WorkflowTemplate", "ml-test", "recsys-prod-ingest")
    assert new in json.dumps(template) and old not in json.dumps(template)  # nothing was written
