"""The interpreter, tuned for one short ``flowplan`` process: the cyclic garbage collector and threads.

A plan of 10,000 flows holds millions of small, acyclic containers (the
manifest, desired and live bodies) that live until the process exits. The
collector's default thresholds re-traverse them again and again: every 25% of
heap growth a full collection, and whatever a phase allocated is traversed by
the young collections after it. At exit the interpreter's last collection
walks the whole heap once more (over a second at 10,000 flows). None of it
frees anything.

The allocation-heavy phases (loading the manifest, compiling, reading a
directory of files) run inside :func:`paused`: no collection while they run.
They leave no cyclic garbage behind (the manifest loader breaks its cycles;
tests/planner/test_heap.py checks), so in the console command, after
:func:`tune`, what such a phase built is moved to the permanent generation when
it ends, where the collector never looks. Tests and library callers keep the
default collector: there :func:`paused` only pauses and resumes.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_tuned = False


#: How long a thread holds the interpreter lock before another may take it (Python's default: 5 ms).
SWITCH_INTERVAL = 0.0005


def tune() -> None:
    """Process-wide tuning for the console command (call once, at start-up).

    Besides the collector: a plan compiles (CPU, one thread) while reader threads list the live
    state (I/O). Each time a reader's socket read returns, its thread waits for the interpreter lock,
    up to the switch interval, and a page of a listing is many reads: with the default 5 ms the
    listings of 10,000 flows took three times as long beside the compile as alone (the "convoy
    effect"). A tenth of it lets them keep pace; the compile pays a few percent more switches.
    """
    global _tuned
    _tuned = True
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.freeze()  # what the imports built lives until exit
    gen0, gen1, _ = gc.get_threshold()
    gc.set_threshold(max(gen0, 50_000), max(gen1, 20), 1_000_000)


def settle() -> None:
    """What was built so far lives until exit: keep the collector off it (only after :func:`tune`)."""
    if _tuned:
        gc.freeze()


@contextmanager
def paused() -> Iterator[None]:
    """No collection while an allocation-heavy phase runs; nests (only the outermost pause resumes)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            settle()
            gc.enable()
