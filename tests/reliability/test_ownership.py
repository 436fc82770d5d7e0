"""Ownership as a property: no plan ever updates, replaces, moves or deletes what flowplan does not own.

Hypothesis draws a history and a world: a first manifest applied (so flowplan
owns objects and lists them in its inventory), then objects of others put
at random names — some at names the next manifest wants, some on top of
flowplan's own objects (replacing them): unmarked objects, objects of another
flowplan project, of another branch, and objects carrying this project's
markers that the inventory never listed (copied by hand). Then a second,
random manifest is planned and applied.

Checked, reading ownership independently of flowplan's reader (file headers,
object labels):

- every update, replace, move or delete in the plan targets an object whose
  markers say project ``rel``, branch ``prod``; an update, replace or delete
  also needs the object in the inventory (markers alone can be copied);
- nothing is adopted without ``--adopt``;
- after the apply, every object of others is byte-for-byte (or
  resourceVersion) what it was.

The files backend runs the many examples; the Argo test server a smaller run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.harness import ArgoTarget, FilesTarget, Recorder, Target, reset_target, scale
from tests.reliability.manifests import manifest

SCALE = scale()
POOL = range(8)
KINDS_FILES = ("workflowtemplate", "cronworkflow", "sensor")
KINDS_ARGO = ("WorkflowTemplate", "CronWorkflow", "Sensor")
OWNERS = ("unmarked", "other-project", "other-branch", "ours-untracked")

flow_sets = st.sets(st.sampled_from(list(POOL)), min_size=1, max_size=len(POOL))
intruders = st.lists(
    st.tuples(st.sampled_from(range(3)), st.sampled_from(list(POOL)), st.sampled_from(OWNERS)),
    max_size=6,
    unique_by=lambda t: (t[0], t[1]),
)


def _settings(examples: int) -> Any:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


def _header_owner(owner: str) -> tuple[str, str] | None:
    return {"other-project": ("other", "prod"), "other-branch": ("rel", "dev"), "ours-untracked": ("rel", "prod")}.get(
        owner
    )


# --------------------------------------------------------------------------- files


def _files_owner(path: Path) -> tuple[str, str] | None:
    for line in path.read_text(errors="replace").splitlines()[:3]:
        if line.startswith("# flowplan: "):
            data = json.loads(line[len("# flowplan: ") :])
            return str(data.get("project")), str(data.get("branch"))
    return None


def _put_file(target: FilesTarget, kind: int, flow: int, owner: str) -> Path:
    name = f"rel-prod-f{flow:03d}"
    path = target.root / "deploy" / "ml" / KINDS_FILES[kind] / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    body = (
        f"apiVersion: argoproj.io/v1alpha1\nkind: {KINDS_ARGO[kind]}\nmetadata:\n  name: {name}\nspec: {{x: {flow}}}\n"
    )
    marks = _header_owner(owner)
    if marks is not None:
        address = f"local.{KINDS_ARGO[kind]}.ml/{name}"
        header = {"project": marks[0], "branch": marks[1], "address": address, "flow": f"f{flow:03d}"}
        body = "# Managed by flowplan: hand-made\n# flowplan: " + json.dumps(header) + "\n" + body
    path.write_text(body)
    return path


def _check_files_example(
    target: FilesTarget, first: set[int], second: set[int], variant: int, others: list[tuple[int, int, str]]
) -> dict[str, int]:
    reset_target(target)
    target.manifest_path.write_text(manifest("files", 0, numbers=first, project="rel"))
    assert target.apply().code == 0
    inventory = {a for a in target.inventory().entries}
    tracked = {(a.kind, a.name) for a in inventory}
    foreign: dict[Path, bytes] = {}
    for kind, flow, owner in others:
        path = _put_file(target, kind, flow, owner)
        if owner != "ours-untracked" or (KINDS_ARGO[kind], path.stem) not in tracked:
            foreign[path] = path.read_bytes()
    target.manifest_path.write_text(manifest("files", 0, variant=variant, numbers=second, project="rel"))
    result = target.run("plan", "--format", "json", "--allow-destroy")
    assert result.code == 0, result.text
    plan = json.loads(result.out)
    touched = 0
    for change in plan["changes"]:
        action = change["action"]
        assert action != "adopt", change["address"]
        if action == "create":
            continue
        touched += 1
        address = change.get("moved_from") if action == "move" else change["address"]
        kind_name = address.split(".", 2)[1].lower()
        path = target.root / "deploy" / "ml" / kind_name / (address.rsplit("/", 1)[1] + ".yaml")
        assert _files_owner(path) == ("rel", "prod"), f"{action} of {address}, owned by {_files_owner(path)}"
        if action in ("update", "replace", "delete"):
            assert any(str(a) == address for a in inventory), f"{action} of {address}, not in the inventory"
    applied = target.apply()
    assert applied.code in (0, 1), applied.text
    assert "Traceback" not in applied.text
    for path, data in foreign.items():
        assert path.read_bytes() == data, f"{path} was changed"
    return {"changes touching live objects": touched, "objects of others": len(foreign)}


@given(first=flow_sets, second=flow_sets, variant=st.sampled_from([0, 1]), others=intruders)
@_settings(5)
def test_no_plan_touches_what_it_does_not_own_files_quick(
    files_target: Target, first: set[int], second: set[int], variant: int, others: list[tuple[int, int, str]]
) -> None:
    assert isinstance(files_target, FilesTarget)
    _check_files_example(files_target, first, second, variant, others)


def _tally(trial: Recorder, figures: dict[str, int]) -> None:
    """One more example, and its figures added to the trial's totals."""
    trial.size["examples"] = trial.size.get("examples", 0) + 1
    for key, value in figures.items():
        trial.extra[key] = trial.extra.get(key, 0) + value


@pytest.mark.slow
@given(first=flow_sets, second=flow_sets, variant=st.sampled_from([0, 1]), others=intruders)
@_settings(SCALE.ownership_examples)
def test_no_plan_touches_what_it_does_not_own_files(
    files_target: Target,
    trial: Recorder,
    first: set[int],
    second: set[int],
    variant: int,
    others: list[tuple[int, int, str]],
) -> None:
    assert isinstance(files_target, FilesTarget)
    trial.family, trial.backend = "ownership (property)", "files"
    _tally(trial, _check_files_example(files_target, first, second, variant, others))
    trial.check("no update/replace/move/delete of an object not marked rel/prod; deletes only from the inventory")
    trial.check("objects of others byte-identical after apply")


# --------------------------------------------------------------------------- argo


def _argo_owner(obj: dict[str, Any]) -> tuple[str, str] | None:
    labels = obj["metadata"].get("labels") or {}
    if labels.get("app.kubernetes.io/managed-by") != "flowplan":
        return None
    return str(labels.get("flowplan.dev/project")), str(labels.get("flowplan.dev/branch"))


def _put_object(target: ArgoTarget, kind: int, flow: int, owner: str) -> tuple[str, str]:
    name = f"rel-prod-f{flow:03d}"
    kind_name = KINDS_ARGO[kind]
    target.server.delete_object(kind_name, "ml", name)
    metadata: dict[str, Any] = {"name": name, "namespace": "ml"}
    marks = _header_owner(owner)
    if marks is not None:
        metadata["labels"] = {
            "app.kubernetes.io/managed-by": "flowplan",
            "flowplan.dev/project": marks[0],
            "flowplan.dev/branch": marks[1],
            "flowplan.dev/flow": f"f{flow:03d}",
        }
    target.server.put_object(
        {"apiVersion": "argoproj.io/v1alpha1", "kind": kind_name, "metadata": metadata, "spec": {"x": flow}},
        manager="someone-else",
    )
    return kind_name, name


def _check_argo_example(
    target: ArgoTarget, first: set[int], second: set[int], variant: int, others: list[tuple[int, int, str]]
) -> dict[str, int]:
    reset_target(target)
    target.manifest_path.write_text(manifest("argo", 0, numbers=first, project="rel"))
    assert target.apply().code == 0
    entries = target.inventory().entries
    inventory = {str(a) for a in entries}
    tracked = {(a.kind, a.name) for a in entries}
    foreign: dict[tuple[str, str], str] = {}
    for kind, flow, owner in others:
        key = _put_object(target, kind, flow, owner)
        if owner != "ours-untracked" or key not in tracked:
            foreign[key] = target.server.get_object(key[0], "ml", key[1])["metadata"]["resourceVersion"]
    target.manifest_path.write_text(manifest("argo", 0, variant=variant, numbers=second, project="rel"))
    result = target.run("plan", "--format", "json", "--allow-destroy")
    assert result.code == 0, result.text
    touched = 0
    for change in json.loads(result.out)["changes"]:
        action = change["action"]
        assert action != "adopt"
        if action == "create":
            continue
        touched += 1
        address = change.get("moved_from") if action == "move" else change["address"]
        kind_name, name = address.split(".", 2)[1], address.rsplit("/", 1)[1]
        obj = target.server.get_object(kind_name, "ml", name)
        assert obj is not None and _argo_owner(obj) == ("rel", "prod"), f"{action} of {address}"
        if action in ("update", "replace", "delete"):
            assert address in inventory, f"{action} of {address}, not in the inventory"
    applied = target.apply()
    assert applied.code in (0, 1), applied.text
    for (kind_name, name), version in foreign.items():
        obj = target.server.get_object(kind_name, "ml", name)
        assert obj is not None and obj["metadata"]["resourceVersion"] == version, f"{kind_name} {name} was changed"
    return {"changes touching live objects": touched, "objects of others": len(foreign)}


@pytest.mark.slow
@given(first=flow_sets, second=flow_sets, variant=st.sampled_from([0, 1]), others=intruders)
@_settings(SCALE.ownership_examples_argo)
def test_no_plan_touches_what_it_does_not_own_argo(
    argo_target: Target,
    trial: Recorder,
    first: set[int],
    second: set[int],
    variant: int,
    others: list[tuple[int, int, str]],
) -> None:
    assert isinstance(argo_target, ArgoTarget)
    trial.family, trial.backend = "ownership (property)", "argo"
    _tally(trial, _check_argo_example(argo_target, first, second, variant, others))
    trial.check("no update/replace/move/delete of an object not labelled rel/prod; deletes only from the inventory")
    trial.check("objects of others untouched (resourceVersion) after apply")
