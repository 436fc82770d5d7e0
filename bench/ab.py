"""A/B timing of two checkouts of flowplan on the same machine, interleaved, best of N.

    .venv/bin/python -m bench.ab --a ../base --b . --sizes 1000,10000 --repeat 3

Each side runs as its own ``flowplan`` process with ``PYTHONPATH`` set to its checkout (one
virtualenv serves both), on the files backend, in its own copy of the same generated manifest:
the all-create plan, the apply, then the no-change plan. Runs alternate A, B, A, B, ... so a
machine that slows down mid-way slows both sides alike; the best of ``--repeat`` is reported
(wall seconds; the apply once per side). A regression is a B/A ratio above ``--tolerance``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import generate

SCENARIOS = ("plan (all create)", "apply", "plan (no change)")


def _run(checkout: Path, workdir: Path, *args: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(checkout.resolve()), "NO_COLOR": "1"}
    command = [sys.executable, "-c", "import sys; from planner.cli import main; sys.exit(main())", *args]
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 2):
        raise SystemExit(f"{checkout}: flowplan {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return elapsed


def measure(sides: dict[str, Path], size: int, repeat: int, root: Path) -> dict[str, dict[str, float]]:
    """Best wall time per side and scenario for one manifest size."""
    text = generate.generate(size, "files")
    dirs = {}
    for name in sides:
        folder = root / f"{name}-{size}"
        folder.mkdir()
        (folder / "flows.yaml").write_text(text)
        dirs[name] = folder
    best: dict[str, dict[str, float]] = {name: {} for name in sides}

    def keep(name: str, scenario: str, seconds: float) -> None:
        best[name][scenario] = min(best[name].get(scenario, float("inf")), seconds)

    for _ in range(repeat):
        for name, checkout in sides.items():
            keep(name, SCENARIOS[0], _run(checkout, dirs[name], "plan", "--no-color"))
    for name, checkout in sides.items():
        keep(name, SCENARIOS[1], _run(checkout, dirs[name], "apply", "--auto-approve", "--no-color"))
    for _ in range(repeat):
        for name, checkout in sides.items():
            keep(name, SCENARIOS[2], _run(checkout, dirs[name], "plan", "--no-color"))
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="checkout A (the baseline)")
    parser.add_argument("--b", required=True, help="checkout B (the change)")
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tolerance", type=float, default=1.15, help="largest accepted B/A ratio")
    args = parser.parse_args(argv)
    sides = {"A": Path(args.a), "B": Path(args.b)}
    worst = 0.0
    print("| flows | scenario | A (s) | B (s) | B/A |")
    print("|---:|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="flowplan-ab-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            best = measure(sides, size, args.repeat, Path(tmp))
            for scenario in SCENARIOS:
                a, b = best["A"][scenario], best["B"][scenario]
                worst = max(worst, b / a)
                print(f"| {size:,} | {scenario} | {a:.2f} | {b:.2f} | {b / a:.2f} |", flush=True)
    return 1 if worst > args.tolerance else 0


if __name__ == "__main__":
    raise SystemExit(main())
