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


def test_the_serving_workers_hold_store_can_be_verified_over_http(priced):
    from e2e.support import chat_body, customer, post_chat

    who = customer(priced, credit_micros=1_000_000)
    assert post_chat(priced, who.key, chat_body(max_tokens=10)).status_code == 200
    verdict = priced.admin("GET", "/admin/holds/verify")
    assert verdict.status_code == 200
    assert verdict.json()["match"] is True

    gw = priced.gateway
    # A stray reservation under this (live) worker's name: sweeps keep it, verify names it.
    gw.holds.place(who.account_id, "req_phantom", 1_000, 0, gw.workers.worker_id)
    verdict = priced.admin("GET", "/admin/holds/verify").json()
    assert verdict["match"] is False
    assert "req_phantom" in verdict["differences"][0]
