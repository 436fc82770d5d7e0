"""Applying a plan: the one transaction through which every command changes a backend.

Start at :class:`Transaction` (:mod:`planner.applying.transaction`); each stage
lives in a module of its own:

- :mod:`~planner.applying.compare` — the plan shown against a fresh one;
- :mod:`~planner.applying.locks` — all-or-none locking, renewal, release;
- :mod:`~planner.applying.waves` — intent, parallel writes, confirmation, skips;
- :mod:`~planner.applying.writes` — one change as writer calls;
- :mod:`~planner.applying.inventory` — intents, confirmations, repairs;
- :mod:`~planner.applying.revision` — the revision recorded for history and rollback;
- :mod:`~planner.applying.outcome` — options, the outcome and its error.
"""

from planner.applying.compare import check_same
from planner.applying.outcome import ApplyOptions, ApplyOutcome, Event, raise_for_outcome
from planner.applying.transaction import Repaired, Replan, Seen, Transaction, Watch, Watcher

__all__ = [
    "ApplyOptions",
    "ApplyOutcome",
    "Event",
    "Repaired",
    "Replan",
    "Seen",
    "Transaction",
    "Watch",
    "Watcher",
    "check_same",
    "raise_for_outcome",
]
