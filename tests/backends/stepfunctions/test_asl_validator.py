"""The ASL validator the compiler tests rely on catches what AWS rejects (so those tests can fail)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.backends.stepfunctions.asl_validator import validate
from tests.backends.stepfunctions.helpers import compile_manifest, load


def _machine(name: str) -> dict[str, Any]:
    (machine,) = [r for r in compile_manifest(load()) if r.address.kind == "StateMachine" and r.address.name == name]
    return copy.deepcopy(machine.body["definition"])


def _train() -> dict[str, Any]:
    return _machine("recsys-prod-train")


def _features() -> dict[str, Any]:
    return _machine("recsys-prod-features")


def _states(d: dict[str, Any]) -> dict[str, Any]:
    return d["States"]  # type: ignore[no-any-return]


def _branch(d: dict[str, Any]) -> dict[str, Any]:
    return _states(d)["start: fan-out"]["Branches"][0]  # type: ignore[no-any-return]


def _relink(state: dict[str, Any], target: str) -> None:
    state.pop("End", None)
    state["Next"] = target


def _out_of_scope(d: dict[str, Any]) -> None:
    _relink(_branch(d)["States"]["train-gbdt"], "evaluate")


def _never_ends(d: dict[str, Any]) -> None:
    _relink(_states(d)["end"], "evaluate")


def _duplicate(d: dict[str, Any]) -> None:
    branch = _branch(d)
    branch["States"]["evaluate"] = branch["States"].pop("train-gbdt")
    branch["StartAt"] = "evaluate"


def _long_name(d: dict[str, Any]) -> None:
    _states(d)["x" * 81] = {"Type": "Pass", "End": True}
    _relink(_states(d)["end"], "x" * 81)


def _env(d: dict[str, Any], index: int) -> dict[str, Any]:
    return _states(d)["start"]["Parameters"]["ContainerOverrides"]["Environment"][index]  # type: ignore[no-any-return]


def _gbdt(d: dict[str, Any]) -> dict[str, Any]:
    return _branch(d)["States"]["train-gbdt"]  # type: ignore[no-any-return]


Breakage = tuple[Callable[[], dict[str, Any]], Callable[[dict[str, Any]], Any], str]

BREAKAGES: dict[str, Breakage] = {
    "dangling Next": (_train, lambda d: _states(d)["evaluate"].update(Next="nowhere"), "not a state in the same"),
    "Next out of scope": (_train, _out_of_scope, "not a state in the same scope"),
    "no terminal state": (_train, _never_ends, "no terminal state"),
    "both Next and End": (_train, lambda d: _states(d)["end"].update(Next="evaluate"), "exactly one of Next"),
    "duplicate name in a branch": (_train, _duplicate, "names are unique"),
    "unreachable state": (_train, lambda d: _states(d).update(orphan={"Type": "Pass", "End": True}), "unreachable"),
    "name too long": (_train, _long_name, "longer than 80"),
    "bad StartAt": (_train, lambda d: d.update(StartAt="missing"), "StartAt"),
    "unknown field": (_train, lambda d: _states(d)["end"].update(Timeout=5), "not allowed"),
    "unknown intrinsic": (
        _train,
        lambda d: _states(d)["flowplan: parameters"]["Parameters"].update({"x.$": "States.Merge($.a, $.b)"}),
        "unknown intrinsic",
    ),
    "deep JsonMerge": (
        _train,
        lambda d: _states(d)["flowplan: parameters"]["Parameters"].update(
            {"parameters.$": "States.JsonMerge($.defaults, $.input, true)"}
        ),
        "shallow merge",
    ),
    "Format arity": (
        _features,
        lambda d: _env(d, 5).update({"Value.$": "States.Format('{} {}', $.parameters.regions)"}),
        "placeholders",
    ),
    "hyphen in a path": (
        _features,
        lambda d: _states(d)["build: foreach"].update(ItemsPath="$.foreach.train-gbdt"),
        "reference path",
    ),
    "States.ALL not last": (_train, lambda d: _gbdt(d)["Retry"].append({"ErrorEquals": ["Batch.Error"]}), "States.ALL"),
    "negative retries": (_train, lambda d: _gbdt(d)["Retry"][0].update(MaxAttempts=-1), "MaxAttempts"),
    "zero timeout": (_train, lambda d: _gbdt(d).update(TimeoutSeconds=0), "TimeoutSeconds"),
    "Batch task without a queue": (
        _train,
        lambda d: _states(d)["end"]["Parameters"].pop("JobQueue"),
        "Parameters.JobQueue",
    ),
    "Map without a processor": (
        _features,
        lambda d: _states(d)["build: foreach"].pop("ItemProcessor"),
        "ItemProcessor",
    ),
}


@pytest.mark.parametrize("case", sorted(BREAKAGES))
def test_the_validator_rejects(case: str) -> None:
    make, breakage, expected = BREAKAGES[case]
    definition = make()
    assert validate(definition) == []
    breakage(definition)
    found = validate(definition)
    assert any(expected in p for p in found), found
