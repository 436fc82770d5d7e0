"""flowplan's GitHub integration: the Python the shipped Action (``action.yml``) runs.

api        GitHub: the REST calls, over urllib; GitHubError names the call and the status
comments   pull-request comment parts with markers; the error comment that replaces a plan
drift      the one drift issue per project and branch (open, edit, close, reopen)
workflow   annotations, step outputs and the job summary (the runner's files, no API)
app        ``flowplan github ...`` (typer), also ``python -m planner.cli.github ...``
"""

from planner.cli.github.api import GitHub, GitHubError
from planner.cli.github.app import github_app, main

__all__ = ["GitHub", "GitHubError", "github_app", "main"]
