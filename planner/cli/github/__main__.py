"""``python -m planner.cli.github ...``: the same commands as ``flowplan github ...``."""

import sys

from planner.cli.github.app import main

sys.exit(main())
