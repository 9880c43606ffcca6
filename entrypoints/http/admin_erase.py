"""Owner route: erase an account's personal data (11.12, POST /admin/accounts/{id}/erase)."""

from __future__ import annotations

from litestar import Request, Response, post

from entrypoints.http.admin import _command
from entrypoints.http.guards import staff


@post("/admin/accounts/{account_id:str}/erase", guards=[staff("owner")])
async def erase_account(request: Request, account_id: str) -> Response:

    def run(gw, body, actor, command_id):
        gw.erasure.erase_account(account_id, body.get("reason"), actor)
        return {"account_id": account_id, "erased": True}

    return await _command(request, run)
