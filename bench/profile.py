"""Where a plan's time goes: one ``flowplan plan`` under cProfile, summarised by phase and by function.

``python -m bench.profile -- plan -f flows.yaml ...`` runs the CLI in this process under cProfile
(with the CLI's own garbage-collector settings) and prints JSON: the wall time with and without the
profiler, the share of each phase (manifest, compile, inventory, live reads, compare, order, render)
and the functions with the most time of their own.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import sys
import time
from contextlib import redirect_stdout
from typing import Any


def _cumulative(stats: pstats.Stats, file_part: str, function: str) -> float:
    """Cumulative seconds of ``function`` defined in a file ending in ``file_part``."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    return sum(
        ct for (filename, _line, name), (_cc, _nc, _tt, ct, _callers) in raw.items()
        if name == function and filename.endswith(file_part)
    )  # fmt: skip


def profile(args: list[str]) -> dict[str, Any]:
    from planner import heap
    from planner.cli import run

    heap.tune()
    profiler = cProfile.Profile()
    sink = io.StringIO()
    start = time.perf_counter()
    with redirect_stdout(sink):
        profiler.enable()
        code = run(args)
        profiler.disable()
    wall = time.perf_counter() - start
    stats = pstats.Stats(profiler)
    compile_time = sum(
        _cumulative(stats, suffix, "compile") for suffix in ("backends/files.py", "backends/argo/compile.py")
    ) or _cumulative(stats, "backends/stepfunctions/compile.py", "compile")
    phases = {
        "load manifest": _cumulative(stats, "planner/manifest/loader.py", "load_manifest"),
        "compile": compile_time,
        "inventory load": sum(
            _cumulative(stats, s, "load")
            for s in ("backends/files.py", "backends/argo/inventory.py", "backends/stepfunctions/state.py")
        ),
        "live read": sum(
            _cumulative(stats, s, "read")
            for s in ("backends/files.py", "backends/argo/reader.py", "backends/stepfunctions/reader.py")
        ),
        "compare and classify": _cumulative(stats, "planner/builder.py", "_plan_backend"),
        "apply order": _cumulative(stats, "planner/graph.py", "__init__"),
        "flows outline": _cumulative(stats, "planner/outline.py", "flow_outline")
        + _cumulative(stats, "planner/outline.py", "affected_flows"),
        "render": _cumulative(stats, "planner/render/text.py", "render_text"),
    }
    total = sum(v[3] for k, v in stats.stats.items() if k[2] == "run" and k[0].endswith("planner/cli/__init__.py"))  # type: ignore[attr-defined]
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    own = sorted(
        ((tt, f"{filename.rsplit('/site-packages/', 1)[-1].replace('/work/main/', '')}:{line}({name})", nc)
         for (filename, line, name), (_cc, nc, tt, _ct, _callers) in raw.items()),
        reverse=True,
    )[:15]  # fmt: skip
    return {
        "code": code,
        "profiled_wall": wall,
        "profiled_total": total,
        "phases": phases,
        "top_own_time": [{"function": f, "seconds": t, "calls": n} for t, f, n in own],
    }


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "--":
        args = args[1:]
    print(json.dumps(profile(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
