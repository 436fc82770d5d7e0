"""The files backend's part in operating what is deployed: branch deployments, and honest refusals.

The files backend renders manifests into a directory that Argo CD (or ``kubectl apply -R``) syncs
to a cluster. It runs nothing, so it has no runs to report, no trigger plumbing to check and no
way to start a run: those calls raise :class:`~planner.contract.NotSupported` with what to do
instead. What it does hold is every branch's inventory (``.flowplan/<backend>/<project>-<branch>.json``)
and every rendered file's owner header, which is what ``flowplan branches`` lists.

Inventory file names join project and branch with ``-``, so a project ``a`` and a project ``a-b``
could claim the same file; the owner headers of the rendered files decide (a branch is listed when
either its inventory file or files carrying its markers exist).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from backends.files_format import split_file, walk_files
from planner.contract import (
    BranchInfo,
    FlowTarget,
    Inventory,
    LiveState,
    NotSupported,
    Run,
    Scope,
    Submitted,
    TriggerHealth,
)
from planner.contract import (
    RollbackWriter as ContractRollbackWriter,
)
from planner.errors import BackendError
from planner.safe_files import UnsafeFile, read_regular

__all__ = ["FilesOperator"]


class FilesOperator:
    """The :class:`~planner.contract.Operator` of a ``type: files`` backend."""

    def __init__(
        self,
        name: str,
        where: str,
        target: Path,
        state_dir: Path,
        inventory_at: Callable[[Path], Inventory],
        *,
        root: Path | None = None,
    ) -> None:
        """``name``: the backend's in the manifest; ``where``: its directory, for messages; ``target``: the
        rendered files; ``state_dir``: the inventories, one per branch, each opened by ``inventory_at``."""
        self.name = name
        self.where = where
        self.target = target
        self.state_dir = state_dir
        self.inventory_at = inventory_at
        #: Below this folder no link is followed on the way to ``target`` (the manifest's directory).
        self.root = root if root is not None else target

    def _no_runs(self, what: str) -> NotSupported:
        return NotSupported(
            f"backend {self.name!r} only writes {self.where}: {what}",
            hint="look at the cluster that syncs that directory (Argo CD, kubectl apply -R): `argo list`, "
            "`kubectl get workflows`",
        )

    def runs(self, scope: Scope, flows: Sequence[FlowTarget], limit: int) -> dict[str, list[Run]]:
        raise self._no_runs("no runs to show")

    def trigger_health(
        self, scope: Scope, flows: Sequence[FlowTarget], live: LiveState
    ) -> dict[str, list[TriggerHealth]]:
        raise self._no_runs("nothing is scheduled or triggered there")

    def submit(self, scope: Scope, flow: FlowTarget, params: Mapping[str, str]) -> Submitted:
        templates = [r for r in flow.resources if r.address.kind == "WorkflowTemplate"]
        hint = "start it on the cluster that syncs the directory"
        if templates:
            address = templates[0].address
            hint += f": argo submit -n {address.namespace} --from workflowtemplate/{address.name}"
        raise NotSupported(
            f"backend {self.name!r} only writes files; it cannot start a run of {flow.name}",
            hint=hint,
        )

    def rollback_writer(self, scope: Scope, dry_run: bool = False) -> ContractRollbackWriter | None:
        return None

    def branches(self, project: str) -> list[BranchInfo]:
        """Inventories named ``<project>.<branch>.json`` (older ``<project>-<branch>.json`` ones where no newer
        one exists), and the branches the rendered files' headers name."""
        tracked: dict[str, Inventory] = {}
        state_dir = self.state_dir
        if state_dir.is_dir():
            for path in sorted(state_dir.glob(f"{project}.*.json")):
                branch = path.stem[len(project) + 1 :]
                if branch and "." not in branch:
                    tracked[branch] = self.inventory_at(path)
            for path in sorted(state_dir.glob(f"{project}-*.json")):
                branch = path.stem[len(project) + 1 :]
                if branch and "." not in branch:
                    tracked.setdefault(branch, self.inventory_at(path))
        marked = self._marked(project)
        result = []
        for branch in sorted(set(tracked) | set(marked)):
            inventory = tracked.get(branch)
            state = inventory.load() if inventory is not None else None
            if not (state and state.entries) and branch not in marked:
                continue  # destroyed: the inventory remains (with its history), the deployment does not
            result.append(
                BranchInfo(
                    backend=self.name,
                    branch=branch,
                    tracked=len(state.entries) if state else 0,
                    marked=marked.get(branch, 0),
                    last=state.revisions[-1] if state and state.revisions else None,
                    has_inventory=state is not None,
                )
            )
        return result

    def _marked(self, project: str) -> dict[str, int]:
        """Rendered files per branch whose owner header names ``project`` (and this backend)."""
        counts: dict[str, int] = {}
        try:
            for _, path in walk_files(str(self.target), root=str(self.root)):
                try:
                    head = read_regular(path, limit=4095)
                except OSError:
                    continue  # removed since the walk
                owner, _, _ = split_file(head)
                if not owner or owner.get("project") != project:
                    continue
                address = str(owner.get("address", ""))
                if not address.startswith(f"{self.name}."):
                    continue
                branch = str(owner.get("branch", ""))
                counts[branch] = counts.get(branch, 0) + 1
        except UnsafeFile as exc:
            raise BackendError(
                f"refusing {exc}",
                hint="the files backend reads only regular files and folders below the manifest's directory; "
                "replace the link or special file with a regular one (or remove it)",
            ) from None
        return counts
