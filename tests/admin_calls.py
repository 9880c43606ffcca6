"""The owner's HTTP calls, shared by every test that drives a running gateway over HTTP.

A class mixing this in provides ``http`` (an httpx.Client on the gateway's base URL) and
``owner_token`` (a staff token of the owner).
"""

from __future__ import annotations

import uuid

import httpx


class AdminCalls:
    http: httpx.Client
    owner_token: str

    def admin(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.owner_token}", **kwargs.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **kwargs)

    def open_account(self, plan: str = "dev", credit_micros: int = 0) -> str:
        response = self.admin("POST", "/admin/accounts",
                              json={"email": f"{uuid.uuid4().hex[:8]}@example.com", "plan": plan})
        assert response.status_code == 201, response.text
        account_id = response.json()["id"]
        if credit_micros:
            self.grant(account_id, credit_micros)
        return account_id

    def grant(self, account_id: str, amount: int) -> httpx.Response:
        response = self.admin("POST", "/admin/credits/grants",
                              headers={"Idempotency-Key": uuid.uuid4().hex},
                              json={"account_id": account_id, "amount_micros": amount,
                                    "reason": "credit for an automated test run"})
        assert response.status_code == 201, response.text
        return response

    def issue_key(self, account_id: str, environment: str = "live", **body) -> dict:
        response = self.admin("POST", f"/admin/accounts/{account_id}/keys",
                              json={"name": f"key-{uuid.uuid4().hex[:6]}",
                                    "environment": environment, **body})
        assert response.status_code == 201, response.text
        return response.json()

    def register_provider(self, slug: str, base_url: str, priority: int = 100,
                          credential: str = "sk-upstream-secret-1234") -> None:
        response = self.admin("POST", "/admin/providers",
                              json={"slug": slug, "base_url": base_url, "allow_private": True,
                                    "priority": priority, "credential": credential,
                                    "timeout_ms": 5000})
        assert response.status_code == 201, response.text

    def set_price(self, model_id: str, provider: str, input_price: str = "1",
                  output_price: str = "2", **extra) -> None:
        response = self.admin("PUT", f"/admin/models/{model_id}/prices",
                              json={"provider": provider,
                                    "prices": {"input": input_price, "output": output_price},
                                    "context_length": 128_000, **extra})
        assert response.status_code == 200, response.text
