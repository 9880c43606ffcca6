"""Admin routes for limits (1.9, 1.10): an account's restricted profile and explicit
(enterprise) limits, and the gateway-wide layer-1 bypass list.

They sit in the /admin route group, whose guard demands an admin. Each answers once its
change is projected in this worker (the key cache dropped, the bypass list reloaded), with
``changed: false`` and no event when the value already was what was asked. The value shown
is the normal form the service stores (the domain's pure functions, so it cannot differ).
"""

from __future__ import annotations

from litestar import Request, Response, put

from domain.account import explicit_limits
from domain.config import bypass_networks
from entrypoints.http.admin import _command


@put("/admin/accounts/{account_id:str}/restricted")
async def set_restricted(request: Request, account_id: str) -> Response:
    def run(gw, body, actor, command_id):
        changed = gw.accounts.set_restricted(account_id, body.get("enabled"),
                                             body.get("reason"), actor)
        return {"object": "account", "id": account_id, "restricted": body["enabled"],
                "changed": changed}

    return await _command(request, run)


@put("/admin/accounts/{account_id:str}/rate-limits")
async def set_rate_limits(request: Request, account_id: str) -> Response:
    def run(gw, body, actor, command_id):
        changed = gw.accounts.set_rate_limits(account_id, body.get("rate_limits"),
                                              body.get("reason"), actor)
        return {"object": "account", "id": account_id,
                "rate_limits": explicit_limits(body["rate_limits"]), "changed": changed}

    return await _command(request, run)


@put("/admin/ip-bypass")
async def set_ip_bypass(request: Request) -> Response:
    def run(gw, body, actor, command_id):
        changed = gw.accounts.set_ip_bypass(body.get("networks"), body.get("reason"), actor)
        return {"object": "ip_bypass", "networks": bypass_networks(body["networks"]),
                "changed": changed}

    return await _command(request, run)


ROUTES = [set_restricted, set_rate_limits, set_ip_bypass]
