"""Metaflow FlowSpec files as flow sources (``flows.NAME.metaflow``); see docs/metaflow.md.

Compiling is Metaflow's own (:mod:`backends.metaflow._driver`, one isolated
child per flow), flowplan adds names, markers, schedules and triggers
(:mod:`backends.metaflow.argo`, :mod:`backends.metaflow.stepfunctions`), and
code packages are planned resources uploaded at apply
(:mod:`backends.metaflow.package`). Nothing here imports Metaflow: it runs in
the driver's processes only.
"""

from backends.metaflow.settings import METAFLOW_VERSION

__all__ = ["METAFLOW_VERSION"]
