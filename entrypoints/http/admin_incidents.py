"""Admin incident commands (3.4): open one by hand, add a customer-visible note, resolve. They
sit in the /admin group (admin guard); each answers once its event is projected here, with
the incident as the admin view shows it (the public one plus who wrote each note)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post

from application.catalog_view import BUILTIN_PROVIDER
from domain.errors import DomainError
from entrypoints.http.admin import _command


def _view(gw: Any, incident_id: str) -> dict[str, Any]:
    return gw.incident_queries.incident(incident_id, actors=True) or \
        {"id": incident_id, "object": "incident"}


@post("/admin/incidents")
async def open_incident(request: Request) -> Response:
    """Body: provider (a catalog slug, or "gatewayz" for the gateway itself, 8.7), model
    (optional), severity (default low: manual incidents, 3.4), message (<= 2,000)."""
    def run(gw, body, actor, command_id):
        provider = body.get("provider")
        if isinstance(provider, str) and provider != BUILTIN_PROVIDER and \
                provider not in gw.catalog_view.snapshot.providers:
            raise DomainError("not_found", "no such provider", param="provider")
        incident_id = gw.incidents.open(provider, body.get("model"),
                                        body.get("severity", "low"), body.get("message"),
                                        actor)
        return _view(gw, incident_id)

    return await _command(request, run, 201)


@post("/admin/incidents/{incident_id:str}/notes", status_code=200)
async def add_note(request: Request, incident_id: str) -> Response:
    def run(gw, body, actor, command_id):
        gw.incidents.add_note(incident_id, body.get("text"), actor)
        return _view(gw, incident_id)

    return await _command(request, run)


@post("/admin/incidents/{incident_id:str}/resolve", status_code=200)
async def resolve_incident(request: Request, incident_id: str) -> Response:
    def run(gw, body, actor, command_id):
        gw.incidents.resolve(incident_id, actor)
        return _view(gw, incident_id)

    return await _command(request, run)


ROUTES = [open_incident, add_note, resolve_incident]
