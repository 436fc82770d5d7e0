"""Drift and secrets on every backend (issue 7), with the same scenario: apply, change things by hand,
``flowplan drift`` classifies each change with exit 2; after ``apply`` it exits 0.

And a sentinel value marked sensitive reaches the deployed objects but no output of any command in any
format, no error message and no inventory revision.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.worlds import ArgoWorld, FilesWorld, StepFunctionsWorld, World
from tests.support.fixtures import ProxyEnv

SENTINEL = "sEnTiNeL-7f3a9c"


@pytest.fixture(params=["files", "argo", "stepfunctions"])
def world(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    if request.param == "files":
        yield FilesWorld(tmp_path)
    elif request.param == "argo":
        env: ProxyEnv = request.getfixturevalue("k8s_proxy")
        monkeypatch.setenv("KUBECONFIG", str(env.kubeconfig_path))
        from backends.argo import client as argo_client

        monkeypatch.setattr(argo_client, "DEFAULT_RETRY", argo_client.FAST_RETRY)
        yield ArgoWorld(tmp_path, env.k8s.server)
    else:
        yield StepFunctionsWorld(tmp_path, request.getfixturevalue("aws"))


def test_each_out_of_band_change_is_classified_then_apply_restores(world: World) -> None:
    applied = world.apply()
    assert applied.code == 0, applied.text
    code, report = world.drift()
    assert (code, report.get("in_sync")) == (0, True), report

    changed = world.edit_set_field()
    added = world.add_unset_field()
    deleted = world.delete_one()
    lookalike = world.lookalike()
    code, report = world.drift()
    assert code == 2, report
    kinds = {item["address"]: item["kind"] for item in report["drift"]}
    assert kinds == {changed: "changed", added: "changed", deleted: "deleted", lookalike: "conflict"}
    fields = {item["address"]: item["fields"] for item in report["drift"]}
    assert [f["kind"] for f in fields[changed]] == ["changed"]
    assert [f["kind"] for f in fields[added]] == ["added"]
    if world.name == "argo":
        # Kubernetes says who changed it and when (managedFields): the report passes that on
        managers = {item["address"]: item["managers"] for item in report["drift"]}
        assert managers[changed][-1]["manager"] == "kubectl-edit" and managers[changed][-1]["time"]
        assert "by kubectl-edit at" in world.run("drift").out

    # apply restores what it owns; the look-alike is someone else's and stays (apply exits 1 for it)
    assert world.apply().code == 1
    code, report = world.drift()
    assert [item["kind"] for item in report["drift"]] == ["conflict"], report
    world.undo_lookalike()
    assert world.apply().code == 0
    code, report = world.drift()
    assert code == 0, report


def _add_secret(world: World) -> None:
    world.edit_manifest(
        "      start:\n        command: [python, -m, ingest.fetch]\n",
        "      start:\n        command: [python, -m, ingest.fetch]\n"
        f"        env:\n          PARTNER_TOKEN: {{value: {SENTINEL}, sensitive: true}}\n",
    )


@pytest.mark.parametrize("world", ["argo", "stepfunctions"], indirect=True)
def test_a_sensitive_value_is_deployed_but_never_shown(world: World, tmp_path: Path) -> None:
    _add_secret(world)
    outputs: list[str] = []

    def run(command: str, *args: str) -> int:
        result = world.run(command, *args)
        outputs.append(result.text)
        return result.code

    for fmt in ("text", "markdown", "json"):
        run("plan", "--format", fmt)
    plan_file = str(tmp_path / "plan.bin")
    assert run("plan", "--out", plan_file) == 0
    for fmt in ("text", "markdown", "json"):
        run("show", plan_file, "--format", fmt)
    assert run("apply", plan_file) == 0, outputs[-1]
    assert SENTINEL in world.stored_text(), "the value must reach the deployed object"

    # change the secret: the diff is shown, the values are not
    world.edit_manifest(SENTINEL, SENTINEL + "-rotated")
    for fmt in ("text", "markdown", "json"):
        run("plan", "--format", fmt)
    assert run("apply", "--auto-approve") == 0
    for fmt in ("text", "markdown", "json"):
        run("drift", "--format", fmt)
    run("graph")
    run("validate")
    # error paths: a stale saved plan, a bad target, a debug traceback
    assert run("plan", "--out", plan_file) == 0
    world.edit_manifest("command: [python, -m, ingest.fetch]", "command: [python, -m, ingest.fetch2]")
    assert run("apply", plan_file) == 1
    assert run("plan", "--target", "nope") == 1
    run("plan", "--debug", "--target", "nope")

    joined = "\n".join(outputs)
    assert SENTINEL not in joined
    assert "(sensitive)" in joined
    # the inventory's revisions keep hashes of sensitive values, never the values
    inventory = _decoded_inventory(world)
    assert '"bodies"' in inventory and "(sensitive sha256:" in inventory
    assert SENTINEL not in inventory
    assert SENTINEL not in world.inventory_text()
    assert SENTINEL + "-rotated" in world.stored_text()


def _decoded_inventory(world: World) -> str:
    """The inventory as flowplan reads it, with the revisions' compressed bodies unpacked."""
    import base64
    import json
    import zlib

    from planner.cli.session import ManifestOptions, load, parse_vars
    from planner.contract import Scope

    args = world.args()
    var_files = tuple(args[i + 1] for i, a in enumerate(args) if a == "--var-file")
    cli_vars = parse_vars([args[i + 1] for i, a in enumerate(args) if a == "--var"])
    session = load(ManifestOptions(file=args[1], cli_vars=cli_vars, var_files=var_files))
    name, backend = next(iter(session.backends.items()))
    state = backend.inventory(Scope(name, session.manifest.project, session.manifest.branch)).load()
    data = state.to_json()
    for revision in data["revisions"]:
        if revision.get("bodies"):
            revision["bodies"] = json.loads(zlib.decompress(base64.b64decode(revision["bodies"])))
    return json.dumps(data)


def test_the_files_backend_refuses_a_literal_secret(tmp_path: Path) -> None:
    world = FilesWorld(tmp_path)
    _add_secret(world)
    result = world.run("plan")
    assert result.code == 1
    assert "sensitive value refused" in result.err
    assert SENTINEL not in result.text
