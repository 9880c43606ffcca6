"""Public uptime of a model (8.7): ``GET /v1/status/uptime/{model_id}`` answers, per
provider serving it and for the model (its best provider), the share of successful active
probes (3.1) over 24 h, 7 d and 30 d and per UTC day for 90 days. No authentication; a key
presented is checked as on the other /v1 status routes (status._public).

Only probes count: they measure every pair alike whatever its traffic, and they are
nobody's requests, so nothing here derives from an account's data. A provider is named by
its public slug only, never its host or credential.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from application.catalog_view import BUILTIN_PROVIDER
from application.resolve import not_found_error
from entrypoints.http.status import _public


def uptime_of(gw: Any, model_id: str) -> dict[str, Any]:
    wanted = gw.inference.resolver.canonical(model_id) if len(model_id) <= 256 else model_id
    offers = gw.catalog_view.snapshot.offers.get(wanted, ())
    if not any(o.provider.slug != BUILTIN_PROVIDER for o in offers):
        raise not_found_error(model_id)
    return gw.prober.uptime(wanted)


@get("/v1/status/uptime/{model_id:path}")
async def model_uptime(request: Request, model_id: str) -> Response:
    # A path parameter keeps the slashes of org/model ids and starts with "/".
    wanted = model_id.strip("/")
    return await _public(request, lambda gw: uptime_of(gw, wanted))


ROUTES = [model_uptime]
