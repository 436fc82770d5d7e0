"""The fast paths of issue 12 give the same answers as the slow ones they replaced."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from planner.resources import delete_pointer, has_pointer, join_pointer, split_pointer, without


def _without_by_deepcopy(body: dict[str, Any], pointers: list[str]) -> dict[str, Any]:
    """The implementation before issue 12: deep copy, then delete (reference semantics)."""
    present = [p for p in pointers if has_pointer(body, p)]
    if not present:
        return dict(body)
    result = copy.deepcopy(dict(body))
    for pointer in sorted(present, reverse=True):
        delete_pointer(result, pointer)
        parents = split_pointer(pointer)[:-1]
        while parents:
            node: Any = result
            for part in parents[:-1]:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict) and node.get(parents[-1]) == {}:
                del node[parents[-1]]
                parents = parents[:-1]
            else:
                break
    return result


_keys = st.sampled_from(["a", "b", "c", "x/y", "t~0", "0", "1"])
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text("ab", max_size=2),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3),
    max_leaves=12,
)
_pointer = st.lists(st.sampled_from(["a", "b", "c", "x/y", "t~0", "0", "1", "2"]), min_size=0, max_size=4).map(
    join_pointer
)


@settings(max_examples=2000, deadline=None)
@given(st.dictionaries(_keys, _json, max_size=4), st.lists(_pointer, max_size=4))
def test_without_shares_untouched_parts_and_matches_the_deep_copy_version(
    body: dict[str, Any], pointers: list[str]
) -> None:
    before = json.dumps(body, sort_keys=True)
    assert without(body, pointers) == _without_by_deepcopy(body, pointers)
    assert json.dumps(body, sort_keys=True) == before  # the original is untouched


def test_what_the_argo_compiler_remembers_is_what_would_be_computed_afresh() -> None:
    from backends.files import dump_body
    from planner.resources import digest
    from tests.backends.argo.helpers import CASES

    for case in CASES.values():
        for resource in case.compile():
            assert {"digest", "comparison_body"} <= set(resource.__dict__), "recorded by the compiler"
            fresh = without(resource.body, resource.volatile_paths)
            assert dump_body(resource.comparison_body) == dump_body(fresh), resource.address  # key order too
            assert resource.digest == digest(fresh), resource.address
            assert resource.spec_hash == resource.body["metadata"]["annotations"]["flowplan.dev/spec-hash"]
