"""Attacks that need a live API: malformed answers from a server (issue 19), on the Kubernetes API test server.

A compromised or broken endpoint (or a proxy in the way) answers 200 with a body that is not what
the API promises. flowplan must report that as a backend error naming the call and the content
type, never crash, and never leave its lock held because it could not read its own create.
"""

from __future__ import annotations

import pytest

from planner.contract import LockInfo
from tests.backends.argo.test_live_support import Cluster, cluster
from tests.security.conftest import attack
from tests.support.proxy import FaultRule, Respond

__all__ = ["cluster"]


BODIES = {
    "truncated JSON": (b'{"kind": "CronWorkflowList", "items": [', "application/json"),
    "an HTML page": (b"<html><body>502 Bad Gateway</body></html>", "text/html"),
}


@attack("malformed answers: a 200 answer with truncated JSON or an HTML body must be a backend error naming the call")
@pytest.mark.parametrize("what", sorted(BODIES))
def test_a_garbled_listing_is_a_backend_error_naming_the_call(cluster: Cluster, what: str) -> None:
    body, content_type = BODIES[what]
    cluster.proxy.rules.append(
        FaultRule(Respond(200, body, (("Content-Type", content_type),)), key="list cronworkflows")
    )
    result = cluster.flowplan("plan")
    assert result.code == 1
    assert "unexpectedly" not in result.text and "Traceback" not in result.text
    assert "cronworkflows" in result.text.lower() and content_type in result.text


@attack("malformed answers: a garbled Lease create must not leave the lock held until its TTL", fixed=True)
def test_a_garbled_lease_create_does_not_leave_the_lock_held(cluster: Cluster) -> None:
    cluster.proxy.rules.append(
        FaultRule(Respond(201, b"<html>oops</html>", (("Content-Type", "text/html"),)), key="create leases", times=1)
    )
    first = cluster.apply()
    assert first.code == 1 and "unexpectedly" not in first.text
    cluster.proxy.rules.clear()
    backend = cluster.backend()
    lock = backend.lock(backend.scope)
    held = lock.current()
    assert held is None or held.pid == LockInfo.here().pid  # released, or recognised as ours and taken again
    assert cluster.apply().code == 0
