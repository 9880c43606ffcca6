"""A fake OpenRouter balance API on loopback (3.6): GET /v1/credits, with scripted faults."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from aiohttp import web

from .background_server import _BackgroundServer
from .listing_server import FakeListing


class FakeBalance(_BackgroundServer):
    """OpenRouter's GET /v1/credits answering ``balance`` (USD); ListingFaults script failures."""

    def __init__(self, *, name: str = "fake-balance") -> None:
        super().__init__(name=name)
        self._reset_settings()

    def _reset_settings(self) -> None:
        self.default = None
        self.balance = Decimal("80")

    def _make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/credits", self._credits)
        return app

    async def _credits(self, request: web.Request) -> web.StreamResponse:
        await self._remember(request)
        fault = self._next_behaviour()
        if fault is not None:
            await asyncio.sleep(fault.hang_s)
            if fault.redirect_to:
                return web.Response(status=302, headers={"Location": fault.redirect_to})
            if fault.status != 200:
                return web.json_response({"error": {"message": "scripted"}}, status=fault.status)
            if fault.body is not None:
                return web.Response(body=fault.body, content_type="application/json")
            if fault.huge_bytes:
                return await FakeListing._huge(request, fault.huge_bytes)
        text = f'{{"data": {{"total_credits": {self.balance + 50}, "total_usage": 50.0}}}}'
        return web.Response(text=text, content_type="application/json")
