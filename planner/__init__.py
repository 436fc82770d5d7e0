"""flowplan's orchestrator-agnostic core: manifest, planning, rendering and apply.

Nothing here imports kubernetes, boto3 or typer except ``planner.cli``.
"""

__version__ = "0.1.0"
