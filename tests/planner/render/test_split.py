"""Fits a comment: every part within the limit, every destroy listed once in part 1, a note on what was cut."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from planner.plan import Action, Cause, FieldDiff, ResourceChange
from planner.render.markdown import COMMENT_LIMIT, render_markdown, render_markdown_full, render_markdown_parts, size
from planner.resources import Address
from tests.planner.render.synthetic import big_plan, listed, plan_of

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("FLOWPLAN_UPDATE_GOLDEN") == "1"


def _golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if UPDATE or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
    assert actual == path.read_text(), f"{path} differs; rerun with FLOWPLAN_UPDATE_GOLDEN=1 and review"


@pytest.fixture(scope="module")
def big() -> tuple[list[str], list[str]]:
    plan = big_plan()
    destroys = [str(c.address) for c in plan.changes if c.action is Action.DELETE]
    return render_markdown_parts(plan), destroys


def test_3000_changes_every_part_fits(big: tuple[list[str], list[str]]) -> None:
    parts, destroys = big
    assert len(destroys) == 1000 and min(len(a) for a in destroys) > 90  # long names: 1000 of them cannot fit bare
    assert 1 < len(parts) <= 5
    assert all(size(p) <= COMMENT_LIMIT for p in parts), [size(p) for p in parts]


def test_3000_changes_every_destroy_once_in_part_1(big: tuple[list[str], list[str]]) -> None:
    parts, destroys = big
    first = listed(parts[0])
    assert set(first) == set(destroys)
    assert set(first.values()) == {1}
    for later in parts[1:]:
        assert not listed(later)
        assert not any(a in later for a in destroys[:50])


def test_3000_changes_cut_note_and_markers(big: tuple[list[str], list[str]]) -> None:
    parts, _ = big
    n = len(parts)
    assert parts[0].startswith("<!-- flowplan-plan: recsys/prod -->\n")
    assert "Plan: 1000 to create, 1000 to update, 0 to replace, 1000 to delete." in parts[0]
    assert f"> Continued in part 2 of {n}." in parts[0]
    assert "> Cut to fit 65,535 characters:" in parts[0] and "detail blocks" in parts[0]
    for k, part in enumerate(parts[1:], start=2):
        assert part.startswith(f"<!-- flowplan-plan: recsys/prod part {k}/{n} -->\n")
    assert "> Cut to fit" in parts[-1]


def test_3000_changes_split_is_golden(big: tuple[list[str], list[str]]) -> None:
    """The big split, summarised (each part's size, digest, head and tail): any change to the packing shows."""
    parts, _ = big
    lines = []
    for k, part in enumerate(parts, start=1):
        digest = hashlib.sha256(part.encode()).hexdigest()[:16]
        body = part.splitlines()
        lines.append(f"== part {k}: {size(part)} characters, sha256 {digest}")
        lines += [f"  | {line}" for line in body[:12]]
        lines.append("  | ...")
        lines += [f"  | {line}" for line in body[-6:]]
    _golden("split_3000/summary.txt", "\n".join(lines) + "\n")


def test_one_comment_without_split_fits_and_says_what_was_cut() -> None:
    text = render_markdown(big_plan())
    assert size(text) <= COMMENT_LIMIT
    assert "Cut to fit 65,535 characters:" in text
    assert "Continued in part" not in text


def test_medium_names_are_listed_verbatim_exactly_once() -> None:
    plan = big_plan(total=1500, destroys=900, name=lambda i, kind: f"f{i:04d}-{kind.lower()[:4]}", namespace="argo")
    parts = render_markdown_parts(plan)
    first = parts[0]
    assert "```text\n" in first  # the bare style: addresses alone in a code block
    for change in plan.changes:
        if change.action is Action.DELETE:
            assert first.count(str(change.address)) == 1, change.address


def test_small_split_golden() -> None:
    """A plan small enough to read, split at a small limit: the whole output is golden."""
    changes = []
    for i in range(8):
        address = Address("local", "CronWorkflow", "argo", f"recsys-prod-flow-{i}")
        changes.append(ResourceChange(address, Action.DELETE, Cause.ORPHAN, reason="no longer declared", flow=f"f{i}"))
    for i in range(6):
        address = Address("local", "WorkflowTemplate", "argo", f"recsys-prod-flow-{i}")
        diffs = tuple(FieldDiff(f"/spec/templates/{j}/container/image", "x:1", "x:2") for j in range(8))
        changes.append(ResourceChange(address, Action.UPDATE, field_diffs=diffs, flow=f"f{i}"))
    replaced = Address("local", "Sensor", "argo", "recsys-prod-flow-9")
    changes.append(
        ResourceChange(
            replaced,
            Action.REPLACE,
            field_diffs=(FieldDiff("/spec/template/serviceAccountName", "a", "b"),),
            reason="/spec/template/serviceAccountName cannot change in place",
            drifted=True,
            flow="f9",
        )
    )
    plan = plan_of(changes)
    parts = render_markdown_parts(plan, limit=2_500, max_parts=3)
    assert all(size(p) <= 2_500 for p in parts)
    assert listed(parts[0])[str(replaced)] == 1 and "\n".join(parts).count(str(replaced)) == 1
    _golden("split_small/parts.md", "\n\n<!-- ======== next part ======== -->\n\n".join(parts))
    _golden("split_small/full.md", render_markdown_full(plan))


def test_addresses_continue_in_part_2_when_even_the_grouped_list_overflows() -> None:
    plan = big_plan(total=1200, destroys=1200)
    parts = render_markdown_parts(plan, limit=4_000)
    everything = sum((listed(p) for p in parts), start=listed(""))
    assert set(everything) == {str(c.address) for c in plan.changes}
    assert set(everything.values()) == {1}
    assert len(parts) > 5  # the addresses are never cut with --split, whatever max_parts says
    assert all(size(p) <= 4_000 for p in parts)
    single = render_markdown(plan, limit=4_000)
    assert "destroy addresses (use --split to post them all)" in single


def test_a_huge_diff_is_one_capped_piece() -> None:
    address = Address("local", "ConfigMap", "argo", "big")
    diffs = tuple(FieldDiff(f"/data/k{i:05d}", "x" * 150, "y" * 150) for i in range(5000))
    plan = plan_of([ResourceChange(address, Action.UPDATE, field_diffs=diffs)])
    text = render_markdown(plan)
    assert size(text) <= COMMENT_LIMIT
    assert "more lines (see the full plan)" in text
    assert text.count("<details>") == text.count("</details>") == 1


def test_move_is_listed_once_with_where_it_came_from() -> None:
    move = Action.MOVE
    new, old = (
        Address("local", "CronWorkflow", "argo", "recsys-prod-b"),
        Address("local", "CronWorkflow", "argo", "recsys-prod-a"),
    )
    change = ResourceChange(new, move, Cause.MOVED, flow="b", moved_from=old)  # type: ignore[call-arg]
    text = render_markdown(plan_of([change]))
    assert "#### Moved (1)" in text
    assert text.count(str(new)) == 1 and f"moved from `{old}`" in text
