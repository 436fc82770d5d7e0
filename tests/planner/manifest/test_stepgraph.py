"""Step graphs: the shapes Metaflow accepts (series-parallel, one start, one end) and the ones it refuses."""

from __future__ import annotations

import pytest

from planner.manifest.stepgraph import find_cycle, find_graph_problems, graph_problems

ACCEPTED = {
    "single step": {"start": []},
    "chain": {"start": ["a"], "a": ["b"], "b": []},
    "diamond": {"start": ["a", "b"], "a": ["end"], "b": ["end"], "end": []},
    "fan-out of three": {"start": ["a", "b", "c"], "a": ["j"], "b": ["j"], "c": ["j"], "j": []},
    "branches of different lengths": {"start": ["a", "b"], "a": ["a2"], "a2": ["a3"], "a3": ["j"], "b": ["j"], "j": []},
    "two diamonds in a row": {
        "start": ["a", "b"],
        "a": ["j1"],
        "b": ["j1"],
        "j1": ["c", "d"],
        "c": ["j2"],
        "d": ["j2"],
        "j2": [],
    },
    "nested fan-out": {
        "start": ["a", "b"],
        "a": ["a1", "a2"],
        "a1": ["aj"],
        "a2": ["aj"],
        "aj": ["join"],
        "b": ["join"],
        "join": ["end"],
        "end": [],
    },
    "doubly nested fan-out": {
        "start": ["a", "b"],
        "a": ["a1", "a2"],
        "a1": ["x", "y"],
        "x": ["a1j"],
        "y": ["a1j"],
        "a1j": ["aj"],
        "a2": ["aj"],
        "aj": ["join"],
        "b": ["join"],
        "join": [],
    },
    # Series-parallel is a little wider than Metaflow: one join may close a fan-out and the
    # fan-out it sits in at once. Both compilers can express it (nested Parallel states).
    "one join closes nested fan-outs": {
        "start": ["a", "b"],
        "a": ["a1", "a2"],
        "a1": ["aj"],
        "a2": ["join"],
        "aj": ["join"],
        "b": ["bj"],
        "bj": ["join"],
        "join": [],
    },
    "partial joins nest": {"start": ["a", "b", "c"], "a": ["j1"], "b": ["j1"], "j1": ["j2"], "c": ["j2"], "j2": []},
}

REJECTED = {
    "cycle": ({"start": ["a"], "a": ["b"], "b": ["a"]}, "the steps form a cycle: a -> b -> a"),
    "cycle back to start": ({"start": ["a"], "a": ["start"]}, "the steps form a cycle: start -> a -> start"),
    "two starts": ({"start": ["end"], "other": ["end"], "end": []}, "nothing leads to 'start' and 'other'"),
    "two ends": ({"start": ["a", "b"], "a": [], "b": []}, "but 'a' and 'b' have no next"),
    "disconnected": ({"start": [], "lonely": []}, "a flow has one start step"),
    "split straight to its join": (
        {"start": ["a", "join"], "a": ["join"], "join": []},
        "step 'start' leads to 'join' both directly and through 'a'",
    ),
    "crossing branches (bridge)": (
        {"start": ["a", "b"], "a": ["c", "d"], "b": ["d"], "c": ["end"], "d": ["end"], "end": []},
        "every fan-out must join again at a single join step",
    ),
    "crossing inside a nested fan-out": (
        {
            "start": ["a", "b"],
            "a": ["a1", "a2"],
            "a1": ["aj", "bj"],
            "a2": ["aj"],
            "aj": ["join"],
            "b": ["bj"],
            "bj": ["join"],
            "join": [],
        },
        "every fan-out must join again",
    ),
}


@pytest.mark.parametrize("graph", ACCEPTED.values(), ids=list(ACCEPTED))
def test_accepted_shapes(graph: dict[str, list[str]]) -> None:
    assert graph_problems(graph) == []


@pytest.mark.parametrize(("graph", "message"), REJECTED.values(), ids=list(REJECTED))
def test_rejected_shapes(graph: dict[str, list[str]], message: str) -> None:
    problems = graph_problems(graph)
    assert problems, "accepted a graph Metaflow refuses"
    assert any(message in p for p in problems), problems


def test_problems_point_at_a_step() -> None:
    (cycle,) = find_graph_problems({"start": ["a"], "a": ["b"], "b": ["a"]})
    assert (cycle.step, cycle.at_next) == ("b", True)  # b's next closes the cycle
    (bridge,) = find_graph_problems(REJECTED["crossing branches (bridge)"][0])
    assert bridge.step == "a" and not bridge.at_next


def test_dangling_and_repeated_targets_are_left_to_the_caller() -> None:
    assert graph_problems({"start": ["nope", "end", "end"], "end": []}) == []


def test_find_cycle_is_deterministic_and_empty_without_one() -> None:
    graph = {"x": ["y"], "y": ["z"], "z": ["x"], "w": ["x"]}
    assert find_cycle(graph) == ["x", "y", "z"]
    assert find_cycle({"a": ["b"], "b": []}) == []


def test_empty_graph_is_left_to_the_schema() -> None:
    assert graph_problems({}) == []
