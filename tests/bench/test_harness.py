"""The benchmark harness itself, at a tiny size: every scenario runs, the report and figures come out."""

from __future__ import annotations

import json
from pathlib import Path

from bench import generate, run


def test_the_generator_makes_what_the_issue_asks_for() -> None:
    text = generate.generate(12, "files")
    assert text.count("\n  f000") == 12
    assert text.count("next: [left, right]") == 12  # five steps with a fan-out
    assert text.count("    schedule: s") == 12 and text.count("    triggers: [{") == 12
    assert text.count("    sinks: [") == 12
    changed = generate.change_shared_schedule(text)
    assert changed != text and changed.count("\n") == text.count("\n")


def test_the_harness_runs_every_scenario_and_writes_the_report(tmp_path: Path) -> None:
    out, figures = tmp_path / "benchmarks.md", tmp_path / "results.json"
    run.main(
        [
            "--sizes", "3,6", "--backends", "files,argo", "--repeat", "1", "--no-latency",
            "--out", str(out), "--json", str(figures), "--workdir", str(tmp_path / "work"),
        ]
    )  # fmt: skip
    data = json.loads(figures.read_text())
    scenarios = {(m["backend"], m["size"], m["scenario"]) for m in data["measures"]}
    for backend in ("files", "argo"):
        for size in (3, 6):
            for scenario in ("create plan", "apply", "no-change plan", "floor", "schedule changed"):
                assert (backend, size, scenario) in scenarios
    nochange = next(m for m in data["measures"] if m["backend"] == "argo" and m["scenario"] == "no-change plan")
    floor = next(m for m in data["measures"] if m["backend"] == "argo" and m["scenario"] == "floor")
    assert nochange["calls"] == floor["calls"] and all(k.startswith("list ") for k in nochange["calls"])
    assert nochange["note"] == "no changes"
    report = out.read_text()
    for heading in ("## Machine", "## Budgets", "## Results", "## Plan time over the I/O floor", "## Cost in N"):
        assert heading in report
    assert "Argo: a no-change plan makes only paged LISTs | **PASS**" in report
    assert "argo 6" in data["profiles"]
