"""Plan → text, Markdown and JSON. Pure functions: a Plan in, a string out.

All three start from the same JSON-ready dict (:func:`plan_view`, itself the
redacted :meth:`Plan.to_json`), so they can never disagree about what a plan
contains, and no format can leak a sensitive value the others hide.
"""

from planner.render.json import plan_view, render_json
from planner.render.markdown import render_markdown, render_markdown_full, render_markdown_parts
from planner.render.text import render_text

__all__ = [
    "plan_view",
    "render_json",
    "render_markdown",
    "render_markdown_full",
    "render_markdown_parts",
    "render_text",
]
