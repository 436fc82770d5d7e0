"""The garbage-collector tuning of the console command (planner.heap) and the loader's cycles."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
from pathlib import Path

from yaml.nodes import Node

from planner.manifest import load_manifest
from planner.manifest.yamlsource import Source

ROOT = Path(__file__).resolve().parents[2]


def test_loading_a_manifest_leaves_no_cyclic_garbage() -> None:
    """The node tree must be freed by reference counting: as cyclic garbage it waits for a full
    collection (seconds at 10,000 flows), and frozen by the CLI it would never be freed."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        manifest = load_manifest(ROOT / "flows.yaml")
        gc.collect()
        leaked = [o for o in gc.garbage if isinstance(o, Node | Source)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if enabled:
            gc.enable()
    assert manifest.flows
    assert leaked == []


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_paused_phases_are_frozen_only_in_the_console_command() -> None:
    code = """
        import gc
        from planner import heap
        from planner.manifest import load_manifest
        before = gc.get_freeze_count()
        load_manifest("flows.yaml")
        untuned = gc.get_freeze_count() - before
        heap.tune()
        tuned_start = gc.get_freeze_count()
        kept = load_manifest("flows.yaml")
        print(untuned, gc.get_freeze_count() > tuned_start, gc.isenabled(), gc.get_threshold()[2])
    """
    untuned, frozen, enabled, gen2 = _run(code).split()
    assert untuned == "0"  # library callers and tests keep the default collector
    assert frozen == "True"
    assert enabled == "True"  # young collections still run afterwards
    assert int(gen2) >= 1_000_000
