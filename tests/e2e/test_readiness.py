"""/health/ready over HTTP (issue 5): 503 when billed traffic could not be recorded or its
holds never released, so a load balancer routes around this worker."""

from __future__ import annotations

import httpx


def test_ready_is_200_then_503_once_the_group_commit_writer_is_gone(served):
    ready = httpx.get(served.url + "/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"event_store": True, "read_models": True,
                                      "writer": True, "projector": True}

    served.gateway.writer.close()  # its thread ends, as if it had died

    after = httpx.get(served.url + "/health/ready")
    assert after.status_code == 503
    assert after.json()["checks"]["writer"] is False
    assert httpx.get(served.url + "/health").status_code == 200  # alive, not ready
