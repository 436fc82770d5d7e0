"""Markdown for pull-request comments: fits a comment, says what it means, draws the flows.

A plan is read in a pull request, where a comment holds at most 65,535
characters (GitHub). Long plans used to lose what matters in the noise
(opentofu #4200: 123 destroys lost in a 14 MB plan), so the Markdown is built
from *pieces* in a fixed order of importance and packed into comments:

1. the header and summary line (every part has a header; part 1 the summary);
2. the address of every destroy, replace and move, each exactly once;
3. warnings, conflicts, drift;
4. "what it means": schedules in words with fire times and runs per day, the
   flows a shared object's change reaches;
5. a Mermaid picture of the flows that change;
6. the table of the other changes; 7. the per-change details.

Packing walks the pieces in that order and starts a new part when the next
piece does not fit, so part 1 always gets the most important pieces, and
what is cut is always the least important tail, with a note saying what. The
addresses of step 2 are written in the richest form that still fits part 1:
a list with flows and reasons, then bare addresses in a code block, then
addresses grouped under their common prefix (``backend.Kind.namespace/`` and
the start of the name the group shares, up to a ``-``, marked ``…``).
Only when even that overflows do they continue in part 2 (never cut with
``split``). Sizes are counted in UTF-16 code units, which is what GitHub's
limit counts and never less than Python's ``len``.

The hidden marker line on top of each part lets CI update its previous
comments in place: part 1's marker is the same whether or not the plan was
split; later parts add ``part k/n``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jinja2

from planner.explain import fire_time_text, rate_text
from planner.plan import Plan
from planner.render.common import (
    SYMBOLS,
    diff_lines,
    first_leaves,
    fmt,
    friendly,
    managers_text,
    sorted_changes,
    summary_line,
    why,
)
from planner.render.escape import escape_values
from planner.render.graphs import flows_picture, to_mermaid
from planner.render.json import display_bodies, plan_view

#: GitHub's limit for an issue or pull-request comment body.
COMMENT_LIMIT = 65_535
#: Parts ``--split`` writes at most (the destroy list may need more; it is never cut).
MAX_PARTS = 5
#: How many lines of a new object's fields a details block shows.
CREATE_LINES = 60
#: A details block never grows beyond this many lines (a huge diff is still one piece).
DETAIL_LINES = 400
#: ... and about this many characters (a 10,000-field diff is still one readable piece).
DETAIL_CHARS = 20_000
#: Actions whose every address part 1 lists (``move`` is listed as its new address).
MUST_LIST: tuple[str, ...] = ("delete", "replace", "move")
_MUST_TITLES = {"delete": "Destroyed", "replace": "Replaced (destroyed, then created)", "move": "Moved"}
_MUST_COUNTS = {"delete": "{} to destroy", "replace": "{} to replace", "move": "{} to move"}
#: Room kept for a later part's header (its ``part k of n`` is only known at the end).
_PART_DIGITS = 4
#: Names per piece when addresses are grouped under their prefix.
_GROUP_CHUNK = 40


def size(text: str) -> int:
    """Length as GitHub counts it (UTF-16 code units: an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


@functools.lru_cache(maxsize=1)
def _macros() -> Any:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("planner.render", "templates"),
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template("plan.md.j2").module


def _m(name: str, *args: Any) -> str:
    return str(getattr(_macros(), name)(*args))


def _head(macro: str, *args: Any) -> Callable[[bool], str]:
    """A section heading maker: the macro's last argument says whether the section is continued."""

    def make(continued: bool) -> str:
        return _m(macro, *args, continued)

    return make


def comment_marker(view: Mapping[str, Any], part: int = 1, parts: int = 1) -> str:
    """``<!-- flowplan-plan: project/branch -->``; later parts of a split add ``part k/n``."""
    inputs = view["inputs"]
    suffix = f" part {part}/{parts}" if part > 1 else ""
    return f"<!-- flowplan-plan: {inputs['project']}/{inputs['branch']}{suffix} -->"


# --------------------------------------------------------------------------- pieces


@dataclass
class Section:
    """Pieces that share a heading: ``head(continued)`` opens the section in each part it appears in."""

    key: str
    noun: str
    head: Callable[[bool], str]
    items: list[str]
    tail: str = ""
    essential: bool = False


@dataclass
class Part:
    """One comment being filled: its pieces and their size so far (header included)."""

    pieces: list[str] = field(default_factory=list)
    used: int = 0


def _detail_lines(change: Mapping[str, Any], body: Mapping[str, Any] | None, max_chars: int) -> list[str]:
    """The ```diff lines of one change, at most DETAIL_LINES lines and about ``max_chars`` characters."""
    if change["action"] == "create" and body is not None:
        pairs, total = first_leaves(body, CREATE_LINES)
        lines = [f"+ {friendly(p)}: {fmt(v)}" for p, v in pairs]
        if total > CREATE_LINES:
            lines.append(f"  ... {total - CREATE_LINES} more fields")
        return lines
    out = []
    for sign, text in diff_lines(dict(change)):
        if sign == "~":
            path, _, rest = text.partition(": ")
            before, _, after = rest.partition(" -> ")
            out.append(f"- {path}: {before}")
            out.append(f"+ {path}: {after}")
        else:
            out.append(f"{sign} {text}")
    kept, used = [], 0
    for line in out[:DETAIL_LINES]:
        if used + size(line) + 1 > max_chars:
            break
        kept.append(line)
        used += size(line) + 1
    if len(kept) < len(out):
        kept.append(f"  ... {len(out) - len(kept)} more lines (see the full plan)")
    return kept


def _must_items(changes: Sequence[Mapping[str, Any]], style: str) -> list[str]:
    """One action's addresses as pieces: ``rich`` list lines, ``bare`` lines, or ``grouped`` chunks."""
    if style == "rich":
        return [
            _m(
                "must_item",
                {
                    "action": c["action"],
                    "address": c["address"],
                    "flow": c.get("flow"),
                    "why": _must_why(c),
                    "protect": c.get("protect"),
                    "moved_from": c.get("moved_from"),
                },
            )
            for c in changes
        ]
    if style == "bare":
        return [c["address"] + "\n" for c in changes]
    groups: dict[str, list[str]] = {}
    for c in changes:
        prefix, _, name = c["address"].partition("/")
        groups.setdefault(prefix + "/", []).append(name)
    items = []
    for prefix, names in groups.items():
        for start in range(0, len(names), _GROUP_CHUNK):
            chunk = names[start : start + _GROUP_CHUNK]
            common = _common_stem(chunk)
            head = prefix + (common + "…" if common else "")
            items.append(head + "\n" + "".join(f"  {n[len(common) :]}\n" for n in chunk))
    return items


def _common_stem(names: Sequence[str]) -> str:
    """The longest prefix all names share, cut after a ``-`` or ``.`` so no word is split."""
    if len(names) < 2:
        return ""
    first, last = min(names), max(names)
    shared = 0
    while shared < min(len(first), len(last)) and first[shared] == last[shared]:
        shared += 1
    stem = first[:shared]
    cut = max(stem.rfind("-"), stem.rfind("."))
    stem = stem[: cut + 1] if cut >= 0 else ""
    return stem if all(len(n) > len(stem) for n in names) else ""


def _must_why(change: Mapping[str, Any]) -> str:
    parts = []
    if change.get("reason") and change["action"] != "move":
        parts.append(change["reason"])
    if change.get("drifted"):
        parts.append("also changed outside flowplan")
    return "; ".join(parts)


def _must_sections(view: Mapping[str, Any], style: str) -> list[Section]:
    changes = sorted_changes(dict(view))
    sections = []
    for action in MUST_LIST:
        chosen = [c for c in changes if c["action"] == action]
        if not chosen:
            continue
        compact = style != "rich"
        title, count = _MUST_TITLES[action], len(chosen)
        sections.append(
            Section(
                key=action,
                noun=f"{action} address(es)",
                head=_head("must_head", title, count, compact),
                items=_must_items(chosen, style),
                tail=_m("must_tail", compact),
                essential=True,
            )
        )
    return sections


def _schedule_piece(change: Mapping[str, Any], view: Mapping[str, Any]) -> str:
    schedule = change["schedule"]
    before, after = schedule.get("before"), schedule.get("after")
    if before is None:
        headline = "new schedule"
    elif after is None:
        headline = "schedule removed"
    elif before["suspended"] != after["suspended"]:
        headline = "schedule suspended" if after["suspended"] else "schedule resumed"
    else:
        headline = "schedule changes"
    flow = change.get("flow")
    outline = view.get("flows", {}).get(flow or "", {}) or {}
    schedule_name = (outline.get("schedule") or {}).get("name")
    shared_with = []
    if schedule_name:
        headline = headline.replace("schedule", f"schedule `{schedule_name}`", 1)
        shared_with = sorted(
            name
            for name, other in view.get("flows", {}).items()
            if name != flow and (other.get("schedule") or {}).get("name") == schedule_name
        )
    return _m(
        "schedule",
        {
            "flow": flow,
            "headline": headline,
            "kind": change["kind"],
            "name": change["name"],
            "before": _schedule_cells(before),
            "after": _schedule_cells(after),
            "shared_with": shared_with,
            "schedule_name": schedule_name,
        },
    )


def _schedule_cells(side: Mapping[str, Any] | None) -> dict[str, str]:
    if side is None:
        return {"when": "—", "timezone": "—", "runs": "0", "next": "—"}
    crons = " ".join(f"`{e}`" for e in side["expressions"])
    when = f"{_cell(side['words'])} ({crons})"
    runs = rate_text(side["runs_per_day"])
    if side["suspended"]:
        runs = f"0 (suspended; {rate_text(side.get('cron_runs_per_day'))} when resumed)"
    if side.get("next_fire_times"):
        nxt = "<br>".join(fire_time_text(t, side["timezone"]) for t in side["next_fire_times"])
    else:
        nxt = "— (suspended)" if side["suspended"] else "—"
    zone = side["timezone"] + (f" ({_cell(side['problem'])})" if side.get("problem") else "")
    return {"when": when, "timezone": zone, "runs": runs, "next": nxt}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _shared_pieces(view: Mapping[str, Any]) -> list[str]:
    """A line per changed object whose change reaches flows other than its own (or that has none)."""
    affected = view.get("affected_flows", {})
    pieces = []
    for change in sorted_changes(dict(view)):
        flows = affected.get(change["address"], [])
        own = change.get("flow")
        if not flows or (own and set(flows) <= {own}):
            continue
        pieces.append(
            _m(
                "shared",
                {
                    "symbol": SYMBOLS.get(change["action"], "?"),
                    "kind": change["kind"],
                    "name": change["name"],
                    "action": change["action"],
                    "flows": flows,
                },
            )
        )
    return pieces


def _sections(view: Mapping[str, Any], bodies: Mapping[str, Any], style: str, limit: int | None) -> list[Section]:
    """Every piece of the plan, in the order of importance (which is also the order on the page)."""
    changes = sorted_changes(dict(view))
    detail_chars = DETAIL_CHARS if limit is None else min(DETAIL_CHARS, limit // 4)
    sections = _must_sections(view, style)
    if view.get("warnings"):
        sections.append(Section("warnings", "warning(s)", lambda _c: "", [_m("warning", w) for w in view["warnings"]]))
    if view.get("conflicts"):
        sections.append(
            Section(
                "conflicts",
                "conflict(s)",
                _head("conflicts_head"),
                [_m("conflict", c) for c in view["conflicts"]],
                tail="\n",
            )
        )
    drifted = [c for c in changes if c["drifted"] and c["action"] not in MUST_LIST]
    if drifted:
        rows = [_m("drift_row", {"address": c["address"], "why": why(c), "who": managers_text(c)}) for c in drifted]
        sections.append(Section("drift", "drift row(s)", _head("drift_head"), rows, tail="\n"))
    meaning = [_schedule_piece(c, view) for c in changes if c.get("schedule")] + _shared_pieces(view)
    if meaning:
        tail = "\n" if not meaning[-1].endswith("\n\n") else ""
        flows = sorted({f for c in changes for f in view.get("affected_flows", {}).get(c["address"], [])})
        sections.append(Section("meaning", "explanation(s)", _head("meaning_head", flows), meaning, tail=tail))
    picture = flows_picture(view)
    if not picture.empty:
        omitted = len(picture.omitted)
        sections.append(
            Section(
                "diagram",
                "the flow diagram",
                _head("diagram_head"),
                [_m("diagram", to_mermaid(picture), omitted)],
            )
        )
    others = [c for c in changes if c["action"] not in MUST_LIST]
    if others:
        rows = [
            _m(
                "table_row",
                {
                    "symbol": SYMBOLS.get(c["action"], "?"),
                    "action": c["action"],
                    "address": c["address"],
                    "flow": c.get("flow"),
                    "why": why(c).replace("|", "\\|"),
                },
            )
            for c in others
        ]
        sections.append(Section("table", "table row(s)", _head("table_head"), rows, tail="\n"))
    details = []
    for c in changes:
        if c["action"] == "delete":
            continue  # nothing to show beyond its address, which is listed once above
        lines = _detail_lines(c, bodies.get(c["address"]), detail_chars)
        if not lines and not c.get("notes"):
            continue
        symbol = SYMBOLS.get(c["action"], "?")
        # Destroys, replaces and moves are named once, in the list above: here by kind and name only.
        label = f"{c['kind']} {c['name']} ({c['action']})" if c["action"] in MUST_LIST else c["address"]
        details.append(_m("detail", {"summary": f"{symbol} {label}", "notes": c.get("notes", []), "lines": lines}))
    if details:
        sections.append(Section("details", "detail block(s)", _head("details_head"), details))
    if not changes:
        sections.append(Section("none", "", lambda _c: "", [_m("no_changes", bool(view.get("conflicts")))]))
    if view.get("ignored_differences"):
        sections.append(Section("ignored", "ignored note", lambda _c: "", [_m("ignored", view["ignored_differences"])]))
    return sections


# --------------------------------------------------------------------------- packing


def _header(view: Mapping[str, Any], part: int, parts: int) -> str:
    counts = [_MUST_COUNTS[a].format(view["summary"].get(a, 0)) for a in MUST_LIST if view["summary"].get(a, 0)]
    text = _m(
        "header",
        comment_marker(view, part, parts),
        view["inputs"],
        summary_line(view["summary"]),
        view["summary"],
        part,
        parts,
    )
    if part == 1 and counts:
        text += _m("caution", counts)
    return text


def _pack(
    view: Mapping[str, Any], sections: Sequence[Section], limit: int | None, max_parts: int, split: bool
) -> tuple[list[Part], dict[str, tuple[int, int]]]:
    """Fill parts in order; returns the parts and, per section key, (pieces cut, pieces in all).

    A piece that does not fit the current part opens the next one, while
    there may be more parts; after that, it and everything after it is cut,
    except essential pieces (the address lists) when ``split`` is true.
    """
    budget = None if limit is None else limit - _note_room(sections, limit)
    head_room = size(_header(view, 10**_PART_DIGITS - 1, 10**_PART_DIGITS - 1))
    parts = [Part(used=size(_header(view, 1, 1)))]
    if budget is not None and parts[0].used > budget:
        raise ValueError(f"a comment limit of {limit} characters cannot hold even the plan's header")
    cut: dict[str, tuple[int, int]] = {}
    cutting = False
    for section in sections:
        tail = size(section.tail)
        in_part = started = False
        for index, item in enumerate(section.items):
            if cutting and not section.essential:
                cut[section.key] = (len(section.items) - index, len(section.items))
                break
            part = parts[-1]
            piece = item if in_part else section.head(started) + item
            if budget is None or part.used + size(piece) + tail <= budget:
                _add(part, piece)
                in_part = started = True
                continue
            if in_part:
                _add(part, section.tail)
                in_part = False
            if len(parts) >= max_parts and not (split and section.essential):
                cutting = True
                cut[section.key] = (len(section.items) - index, len(section.items))
                break
            parts.append(Part(used=head_room))
            piece = section.head(started) + item
            if head_room + size(piece) + tail > budget:
                piece = _shorten(piece, budget - head_room - tail)
            _add(parts[-1], piece)
            in_part = started = True
        if in_part:
            _add(parts[-1], section.tail)
    return parts, cut


def _note_room(sections: Sequence[Section], limit: int) -> int:
    """The largest closing note a part can get: every section cut, the largest numbers."""
    words = [_cut_words(s.key, len(s.items), len(s.items)) for s in sections]
    later = [f"{10**_PART_DIGITS - 1} of {10**_PART_DIGITS - 1}"]
    return size("\n" + _m("note", later, words, limit))


def _cut_words(key: str, gone: int, whole: int) -> str:
    noun = _CUT_NOUNS.get(key, key)
    return noun if whole == 1 and key in ("diagram", "ignored", "none") else f"{gone:,} of {whole:,} {noun}"


def _add(part: Part, piece: str) -> None:
    part.pieces.append(piece)
    part.used += size(piece)


def _shorten(piece: str, room: int) -> str:
    """Cut one piece larger than a whole part at a line end, closing its code fence and details tag."""
    closing = "```\n\n</details>\n\n" if piece.startswith("<details>") else "\n"
    marker = "... (cut: this block alone does not fit a comment; see the full plan)\n"
    keep = room - size(closing) - size(marker)
    lines = piece.splitlines(keepends=True)
    text, used = "", 0
    for line in lines:
        if used + size(line) > keep:
            break
        text += line
        used += size(line)
    return text + marker + closing


def _finish(
    view: Mapping[str, Any], parts: list[Part], cut: Mapping[str, tuple[int, int]], limit: int | None
) -> list[str]:
    """Headers with ``part k of n`` and the closing notes, once the number of parts is known."""
    total = len(parts)
    cut_words = [_cut_words(key, gone, whole) for key, (gone, whole) in cut.items()]
    texts = []
    for number, part in enumerate(parts, start=1):
        text = _header(view, number, total) + "".join(part.pieces)
        later = [f"{number + 1} of {total}"] if number < total else []
        shown_cut = cut_words if number in (1, total) else []
        if later or shown_cut:
            text += "\n" + _m("note", later, shown_cut, limit or 0)
        if limit is not None and size(text) > limit:
            raise AssertionError(f"part {number} is {size(text)} characters, over {limit}")
        texts.append(text)
    return texts


_CUT_NOUNS = {
    "delete": "destroy addresses (use --split to post them all)",
    "replace": "replace addresses (use --split to post them all)",
    "move": "move addresses (use --split to post them all)",
    "warnings": "warnings",
    "conflicts": "conflicts",
    "drift": "drift rows",
    "meaning": "explanations",
    "diagram": "the flow diagram",
    "table": "table rows",
    "details": "detail blocks",
    "ignored": "ignored-differences note",
    "none": "the no-changes line",
}


def _style_for(view: Mapping[str, Any], limit: int | None) -> str:
    """The richest address style whose header and address lists fit part 1."""
    if limit is None:
        return "rich"
    most = max(len(view["changes"]), len(view.get("conflicts", [])), len(view.get("warnings", [])), 1)
    words = [_cut_words(key, most, most) for key in _CUT_NOUNS]
    note = size("\n" + _m("note", [f"{10**_PART_DIGITS - 1} of {10**_PART_DIGITS - 1}"], words, limit))
    room = limit - note - size(_header(view, 1, 1))
    for style in ("rich", "bare", "grouped"):
        needed = 0
        for section in _must_sections(view, style):
            needed += size(section.head(False)) + sum(size(i) for i in section.items) + size(section.tail)
        if needed <= room:
            return style
    return "grouped"


def render_markdown_parts(
    plan: Plan, *, limit: int | None = COMMENT_LIMIT, max_parts: int = MAX_PARTS, split: bool = True
) -> list[str]:
    """The plan as comments of at most ``limit`` characters each (``None``: one unlimited document).

    At most ``max_parts`` parts, except that the destroy/replace/move
    addresses are never cut when ``split`` is true (they continue in as many
    parts as they need). What does not fit is cut from the least important
    end, and part 1 (and the last part) says what was cut.
    """
    return render_markdown_view_parts(
        plan_view(plan), display_bodies(plan), limit=limit, max_parts=max_parts, split=split
    )


def render_markdown_view_parts(
    view: Mapping[str, Any],
    bodies: Mapping[str, Any] | None = None,
    *,
    limit: int | None = COMMENT_LIMIT,
    max_parts: int = MAX_PARTS,
    split: bool = True,
) -> list[str]:
    view = escape_values(view)  # invisible characters shown as escapes, before sizes are measured
    bodies = escape_values(bodies or {})
    style = _style_for(view, limit)
    sections = _sections(view, bodies, style, limit)
    parts, cut = _pack(view, sections, limit, max_parts if limit is not None else 1, split)
    return _finish(view, parts, cut, limit)


def render_markdown(plan: Plan, *, limit: int | None = COMMENT_LIMIT) -> str:
    """One comment of at most ``limit`` characters (part 1 of the plan; the rest is cut with a note)."""
    return render_markdown_parts(plan, limit=limit, max_parts=1, split=False)[0]


def render_markdown_full(plan: Plan) -> str:
    """The whole plan in one document, nothing cut (for a CI artifact, not a comment)."""
    return render_markdown_parts(plan, limit=None)[0]


def render_markdown_view(view: dict[str, Any], bodies: dict[str, Any] | None = None) -> str:
    """One comment from an already made view (kept for callers that render a view)."""
    return render_markdown_view_parts(view, bodies, max_parts=1, split=False)[0]
