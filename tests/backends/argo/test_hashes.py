"""Changing one field of one flow changes exactly the objects that must change, judged by spec hash.

Each case edits a copy of one base manifest (built from YAML text through the
loader, as a person would write it), compiles both, and compares
``{address: spec hash}``: added, removed and changed addresses must be exactly
the expected ones. Objects are named by short tokens: ``WT:alpha`` is flow
alpha's WorkflowTemplate, ``CM:wh`` sink wh's ConfigMap, ``ES`` the
flow-events EventSource.

Cross-flow effects that are intended, and why:

- ``after: X`` gives X's template an exit handler (X now reports its runs), so
  adding or removing the *first* downstream of X changes X's WorkflowTemplate;
- a shared definition (a named schedule, an event, a sink) changes the objects
  of every flow that uses it, and only those;
- a sink's settings live in its ConfigMap, so changing them leaves templates alone.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from planner.resources import Provenance, Resource
from tests.backends.argo.helpers import PROVENANCE, compile_manifest, load_data

Data = dict[str, Any]

BASE: Data = {
    "version": 1,
    "project": "shop",
    "schedules": {"nightly": {"cron": "0 2 * * *", "timezone": "Europe/Berlin", "concurrency": "forbid"}},
    "events": {
        "landed": {
            "source": "s3",
            "type": "object-created",
            "filters": [{"path": "bucket", "op": "eq", "value": "raw"}],
            "parameters": {"key": "object.key"},
        },
        "ping": {"source": "monitor", "type": "tick"},
    },
    "sinks": {
        "wh": {"type": "warehouse", "uri": "pg://db/x", "table": "t", "credentials": {"secret": "wh", "key": "pw"}},
        "cache": {"type": "cache", "uri": "redis://c/0", "key_prefix": "p/", "ttl": "1h"},
        "spare": {"type": "model", "platform": "kserve", "endpoint": "m"},
    },
    "flows": {
        "alpha": {
            "description": "first",
            "image": "img/alpha:1",
            "schedule": "nightly",
            "parameters": {"epochs": 3, "regions": {"default": ["eu", "us"], "type": "list"}},
            "sinks": ["wh"],
            "tags": {"team": "a"},
            "steps": {
                "start": {
                    "command": ["python", "-m", "a.start"],
                    "resources": {"cpu": "1", "memory": "1Gi"},
                    "retries": 1,
                    "timeout": "10m",
                    "env": {"MODE": "full", "TOKEN": {"value": "t0k3n", "sensitive": True}},
                    "next": ["left", "right"],
                },
                "left": {"command": ["python", "-m", "a.left"], "foreach": {"parameter": "regions"}, "next": "join"},
                "right": {"command": ["python", "-m", "a.right"], "next": "join"},
                "join": {"command": ["python", "-m", "a.join"], "description": "joins", "next": "end"},
                "end": {"command": ["python", "-m", "a.end"]},
            },
        },
        "beta": {
            "image": "img/beta:1",
            "parameters": {"key": "none", "size": 1},
            "triggers": [{"event": "landed"}, {"after": "alpha"}],
            "sinks": ["cache"],
            "steps": {"start": {"command": ["python", "-m", "b"]}},
        },
        "gamma": {
            "image": "img/gamma:1",
            "schedule": {"cron": "*/15 * * * *", "timezone": "UTC"},
            "steps": {"start": {"command": "echo $FLOWPLAN_FLOW"}},
        },
    },
}

Edit = Callable[[Data], None]


def _flow(data: Data, name: str) -> Data:
    flow: Data = data["flows"][name]
    return flow


def _step(data: Data, flow: str, step: str = "start") -> Data:
    result: Data = _flow(data, flow)["steps"][step]
    return result


def _set(path: str, value: Any) -> Edit:
    """An edit that sets a dotted path (creating mappings on the way)."""

    def edit(data: Data) -> None:
        *parents, last = path.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value

    return edit


def _drop(path: str) -> Edit:
    def edit(data: Data) -> None:
        *parents, last = path.split(".")
        node = data
        for part in parents:
            node = node[part]
        del node[last]

    return edit


def _append(path: str, value: Any) -> Edit:
    def edit(data: Data) -> None:
        node: Any = data
        for part in path.split("."):
            node = node[part]
        node.append(value)

    return edit


def _reroute_right(data: Data) -> None:
    """A graph edit: ``right`` now runs through a new step ``mid`` before ``join`` (still series-parallel)."""
    steps = data["flows"]["alpha"]["steps"]
    steps["right"]["next"] = "mid"
    steps["mid"] = {"command": ["python", "-m", "a.mid"], "next": "join"}


A = "flows.alpha"
AS = "flows.alpha.steps.start"
WT_A, CRON_A = "WT:alpha", "Cron:alpha"

CASES: dict[str, tuple[Edit, set[str]]] = {
    # the flow itself
    "image": (_set(f"{A}.image", "img/alpha:2"), {WT_A}),
    "step image": (_set(f"{A}.steps.right.image", "img/other:1"), {WT_A}),
    "command": (_set(f"{AS}.command", ["python", "-m", "a.begin"]), {WT_A}),
    "shell command": (_set("flows.gamma.steps.start.command", "echo hi"), {"WT:gamma"}),
    "cpu": (_set(f"{AS}.resources.cpu", "2"), {WT_A}),
    "memory": (_set(f"{AS}.resources.memory", "2Gi"), {WT_A}),
    "gpu": (_set(f"{AS}.resources.gpu", 1), {WT_A}),
    "retries": (_set(f"{AS}.retries", 2), {WT_A}),
    "timeout": (_set(f"{AS}.timeout", "20m"), {WT_A}),
    "env value": (_set(f"{AS}.env.MODE", "delta"), {WT_A}),
    "env added": (_set(f"{AS}.env.EXTRA", "1"), {WT_A}),
    "sensitive env value": (_set(f"{AS}.env.TOKEN", {"value": "n3w", "sensitive": True}), {WT_A}),
    "next": (_reroute_right, {WT_A}),
    "foreach items": (_set(f"{A}.steps.left.foreach", ["a", "b"]), {WT_A}),
    "foreach dropped": (_drop(f"{A}.steps.left.foreach"), {WT_A}),
    "parameter default": (_set(f"{A}.parameters.epochs", 4), {WT_A}),
    "parameter added": (_set(f"{A}.parameters.lr", 0.1), {WT_A}),
    "parameter description": (_set(f"{A}.parameters.regions.description", "where"), {WT_A}),
    "mapped parameter default": (_set("flows.beta.parameters.key", "other"), {"WT:beta", "Sensor:beta"}),
    "unmapped parameter default": (_set("flows.beta.parameters.size", 2), {"WT:beta"}),
    "description": (_set(f"{A}.description", "second"), {WT_A}),
    "step description": (_set(f"{A}.steps.join.description", "joins both"), set()),
    "tags": (_set(f"{A}.tags.team", "b"), {WT_A, CRON_A}),
    "tag added": (_set(f"{A}.tags.tier", "gold"), {WT_A, CRON_A}),
    "protect": (_set(f"{A}.protect", True), {WT_A, CRON_A}),
    # schedules
    "inline cron": (_set("flows.gamma.schedule.cron", "*/30 * * * *"), {"Cron:gamma"}),
    "inline timezone": (_set("flows.gamma.schedule.timezone", "Asia/Tokyo"), {"Cron:gamma"}),
    "inline concurrency": (_set("flows.gamma.schedule.concurrency", "replace"), {"Cron:gamma"}),
    "inline suspend": (_set("flows.gamma.schedule.suspend", True), {"Cron:gamma"}),
    "inline deadline": (_set("flows.gamma.schedule.starting_deadline", "5m"), {"Cron:gamma"}),
    "schedule removed": (_drop("flows.gamma.schedule"), {"Cron:gamma"}),
    "schedule added": (_set("flows.beta.schedule", "nightly"), {"Cron:beta"}),
    "named schedule cron": (_set("schedules.nightly.cron", "0 3 * * *"), {CRON_A}),
    "named schedule every": (_set("schedules.nightly", {"every": "daily"}), {CRON_A}),
    # triggers
    "event trigger added": (_set("flows.gamma.triggers", [{"event": "ping"}]), {"Sensor:gamma"}),
    "unused event": (_set("events.ping.type", "tock"), set()),
    "after trigger removed": (
        _set("flows.beta.triggers", [{"event": "landed"}]),
        {"Sensor:beta", WT_A, "ES"},  # alpha stops reporting; nobody needs the EventSource
    ),
    "after trigger added": (_append("flows.beta.triggers", {"after": "gamma"}), {"Sensor:beta", "WT:gamma"}),
    "second downstream": (_set("flows.gamma.triggers", [{"after": "alpha"}]), {"Sensor:gamma"}),
    "event filter": (_set("events.landed.filters", [{"path": "bucket", "op": "eq", "value": "raw2"}]), {"Sensor:beta"}),
    "event mapping": (_set("events.landed.parameters", {"key": "object.name"}), {"Sensor:beta"}),
    "event type": (_set("events.landed.type", "object-deleted"), {"Sensor:beta"}),
    # sinks
    "sink added": (_set("flows.gamma.sinks", ["spare"]), {"WT:gamma", "CM:spare"}),
    "shared sink added": (_append(f"{A}.sinks", "cache"), {WT_A}),
    "sink removed": (_set(f"{A}.sinks", []), {WT_A, "CM:wh"}),
    "sink uri": (_set("sinks.wh.uri", "pg://db/y"), {"CM:wh"}),
    "sink ttl": (_set("sinks.cache.ttl", "2h"), {"CM:cache"}),
    "sink credentials": (_set("sinks.wh.credentials", {"secret": "wh2", "key": "pw"}), {WT_A}),
    "unused sink": (_set("sinks.spare.endpoint", "m2"), set()),
}


def _token(resource: Resource) -> str:
    short = {"WorkflowTemplate": "WT", "CronWorkflow": "Cron", "Sensor": "Sensor", "ConfigMap": "CM"}
    kind = resource.address.kind
    if kind == "EventSource":
        return "ES"
    if kind == "ConfigMap":
        return f"CM:{resource.address.name.removeprefix('shop-prod-sink-')}"
    return f"{short[kind]}:{resource.flow}"


def _hashes(data: Data, provenance: Provenance = PROVENANCE) -> dict[str, str]:
    resources = compile_manifest(load_data(data), provenance=provenance)
    tokens = {_token(r): r.spec_hash for r in resources}
    assert len(tokens) == len(resources)
    return tokens


@pytest.fixture(scope="module")
def base() -> dict[str, str]:
    return _hashes(BASE)


def test_base_has_every_kind(base: dict[str, str]) -> None:
    assert set(base) == {
        "WT:alpha",
        "WT:beta",
        "WT:gamma",
        "Cron:alpha",
        "Cron:gamma",
        "Sensor:beta",
        "CM:wh",
        "CM:cache",
        "ES",
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_edit_changes_only_its_objects(case: str, base: dict[str, str]) -> None:
    edit, expected = CASES[case]
    data = copy.deepcopy(BASE)
    edit(data)
    after = _hashes(data)
    changed = {token for token in base.keys() | after.keys() if base.get(token) != after.get(token)}
    assert changed == expected


def test_provenance_changes_no_hash(base: dict[str, str]) -> None:
    for provenance in (
        Provenance("7.0.0", "0" * 64, None),
        Provenance("0.0.0-test", "1" * 64, "feedface"),
    ):
        assert _hashes(BASE, provenance) == base


def test_sensitive_flag_moves_pointers_not_hashes() -> None:
    """Marking a value sensitive hides it in every output but does not change the object."""
    data = copy.deepcopy(BASE)
    data["flows"]["alpha"]["steps"]["start"]["env"]["TOKEN"] = "t0k3n"
    plain = {r.address: r for r in compile_manifest(load_data(data))}
    marked = {r.address: r for r in compile_manifest(load_data(BASE))}
    assert {a: r.spec_hash for a, r in plain.items()} == {a: r.spec_hash for a, r in marked.items()}
    template = next(a for a in marked if a.kind == "WorkflowTemplate" and a.name.endswith("alpha"))
    assert plain[template].sensitive_paths == ()
    assert len(marked[template].sensitive_paths) == 1
