"""The call budget of a no-change plan (issue 12), counted by the proxy: counts, not timings.

The budget itself is ``helpers.budget``; ``test_live.py`` applies the example
and checks a no-change plan against it (one apply serves both tests there).

Besides the listings (one page each at this size), a plan may make at most one
describe per state machine and per schedule, and one target listing and one
tag lookup per rule (and one tag lookup per sink parameter and for the schedule
group). Anything else — a second describe, a per-resource tag lookup for
machines the tag listing already returned, a write — fails the test.
"""

from __future__ import annotations

from tests.backends.stepfunctions.helpers import EXAMPLE_KINDS, budget, over_budget


def test_the_budget_check_itself_catches_an_extra_call() -> None:
    allowed = budget(EXAMPLE_KINDS)
    assert over_budget(allowed, allowed) == {}
    assert over_budget({**allowed, "states:DescribeStateMachine": 5}, allowed) == {
        "states:DescribeStateMachine": (5, 4)
    }
    assert over_budget({"states:ListTagsForResource": 4}, allowed) == {"states:ListTagsForResource": (4, 0)}
