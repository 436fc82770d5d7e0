"""Apply order: waves by dependency depth, ties by kind then name, deletes last in reverse kind rank."""

from __future__ import annotations

import random

from planner.graph import ApplyOrder, kind_ranks, to_dot
from planner.plan import Action, ResourceChange
from planner.resources import Address, Resource


def A(kind: str, name: str, backend: str = "b") -> Address:
    return Address(backend, kind, "ns", name)


def _change(address: Address, action: Action, deps: tuple[Address, ...] = ()) -> ResourceChange:
    return ResourceChange(address=address, action=action, depends_on=deps)


CM, WT, CRON, SENSOR = A("ConfigMap", "s"), A("WorkflowTemplate", "t"), A("CronWorkflow", "t"), A("Sensor", "t")
DESIRED = [
    Resource(CM, {}),
    Resource(WT, {}, depends_on=(CM,)),
    Resource(CRON, {}, depends_on=(WT,)),
    Resource(SENSOR, {}, depends_on=(WT,)),
]


def test_kinds_rank_after_what_they_depend_on() -> None:
    ranks = kind_ranks(DESIRED)
    assert ranks[("b", "ConfigMap")] < ranks[("b", "WorkflowTemplate")] < ranks[("b", "CronWorkflow")]
    assert ranks[("b", "Sensor")] == ranks[("b", "CronWorkflow")]


def test_kind_cycles_rank_everything_equal() -> None:
    a, b = A("Alpha", "x"), A("Beta", "y")
    ranks = kind_ranks([Resource(a, {}, depends_on=(b,)), Resource(b, {}, depends_on=(a,))])
    assert set(ranks.values()) == {0}


def test_waves_follow_dependencies_and_deletes_go_last_dependents_first() -> None:
    old_wt, old_cron = A("WorkflowTemplate", "old"), A("CronWorkflow", "old")
    changes = [
        _change(CRON, Action.CREATE, (WT,)),
        _change(WT, Action.CREATE, (CM,)),
        _change(CM, Action.UPDATE),
        _change(SENSOR, Action.CREATE, (WT,)),
        _change(old_wt, Action.DELETE),
        _change(old_cron, Action.DELETE),
    ]
    order = ApplyOrder(changes, kind_ranks(DESIRED))
    assert order.waves() == ((CM,), (WT,), (CRON, SENSOR), (old_cron,), (old_wt,))
    # a failed template holds back its dependents and this backend's deletes, not unrelated writes
    assert order.dependents(WT) == {CRON, SENSOR, old_cron, old_wt}
    assert order.dependents(old_cron) == {old_wt}


def test_ties_break_by_kind_then_name_whatever_the_input_order() -> None:
    changes = [
        _change(A("Sensor", "a"), Action.CREATE),
        _change(A("ConfigMap", "z"), Action.CREATE),
        _change(A("ConfigMap", "b"), Action.UPDATE),
        _change(A("CronWorkflow", "m"), Action.ADOPT),
    ]
    expected = ((A("ConfigMap", "b"), A("ConfigMap", "z"), A("CronWorkflow", "m"), A("Sensor", "a")),)
    for seed in range(5):
        shuffled = list(changes)
        random.Random(seed).shuffle(shuffled)
        assert ApplyOrder(shuffled, {}).waves() == expected


def test_deletes_of_one_rank_share_a_wave_sorted_by_kind_then_name() -> None:
    deletes = [_change(A("CronWorkflow", n), Action.DELETE) for n in ("z", "a")]
    deletes += [_change(A("Sensor", "q"), Action.DELETE), _change(A("ConfigMap", "c"), Action.DELETE)]
    waves = ApplyOrder(deletes, kind_ranks(DESIRED)).waves()
    assert waves == (
        (A("CronWorkflow", "a"), A("CronWorkflow", "z"), A("Sensor", "q")),
        (A("ConfigMap", "c"),),
    )


def test_a_delete_does_not_hold_back_another_backend() -> None:
    here, there = A("ConfigMap", "x", "one"), A("ConfigMap", "y", "two")
    order = ApplyOrder([_change(here, Action.CREATE), _change(there, Action.DELETE)], {})
    assert order.dependents(here) == set()
    assert order.waves() == ((here,), (there,))


def test_dot_is_stable_and_colours_actions() -> None:
    old = A("Sensor", "old")
    changes = [_change(WT, Action.CREATE, (CM,)), _change(CM, Action.UPDATE), _change(old, Action.DELETE)]
    order = ApplyOrder(changes, kind_ranks(DESIRED))
    actions = {c.address: c.action for c in changes}
    dot = to_dot(order, actions)
    assert dot == to_dot(ApplyOrder(list(reversed(changes)), kind_ranks(DESIRED)), actions)
    assert f'"{CM}" -> "{WT}";' in dot
    assert f'"{WT}" -> "{old}";' in dot
    assert "color=red" in dot and "color=darkgreen" in dot
