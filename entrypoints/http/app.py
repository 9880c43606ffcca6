"""The Litestar app factory: one app, routes grouped per audience, one error mapping."""

from __future__ import annotations

from litestar import Litestar, Router
from litestar.exceptions import HTTPException

from domain.errors import DomainError
from entrypoints.http import (
    admin,
    admin_catalog,
    admin_credit,
    admin_erase,
    admin_incidents,
    admin_limits,
    admin_probes,
    admin_sync,
    admin_users,
    audit,
    finance,
    health,
    inference,
    keys,
    messages,
    models,
    responses,
    routes,
    self_service,
    status,
    uptime,
)
from entrypoints.http.audit_security import list_security_events
from entrypoints.http.context import BODY_LIMIT, READ_SLACK, request_id_middleware
from entrypoints.http.edge import edge_middleware, quiet_stream_cuts
from entrypoints.http.errors import (
    domain_error_handler,
    http_error_handler,
    internal_error_handler,
)
from entrypoints.http.finance_journal import liabilities, trial_balance
from entrypoints.http.guards import staff
from entrypoints.http.intake import intake_middleware
from entrypoints.http.intake import settings_from_env as intake_settings
from entrypoints.http.limits import limits_middleware


def create_app(gateway):
    """The ASGI app: request ids and the edge's headers (nosniff, no-store) are set outside
    Litestar so that even unrouted requests (404, 405) carry them."""
    quiet_stream_cuts()
    max_in_flight, body_deadline_s = intake_settings()
    # Outside in: edge headers, request id, intake (in-flight cap, body deadline, CORS),
    # then /v1 rate limits (layer 1 before any key lookup; headers and slots of layer 2).
    limited = limits_middleware(create_litestar(gateway), gateway.limiter, gateway.security)
    return edge_middleware(request_id_middleware(intake_middleware(
        limited, max_in_flight, body_deadline_s)))


def _admin_routes() -> Router:
    """Every /admin route demands an admin; owner-only ones add their own guard."""
    return Router(path="/", guards=[staff("admin")], route_handlers=[
        admin.open_account, admin.issue_key, admin.account_keys, admin.get_key,
        admin.rotate_key, admin.revoke_key,
        admin.grant_credits, admin.register_provider, admin.set_model, admin.start_maintenance,
        admin.end_maintenance, *admin_catalog.ROUTES,
        admin.request_record, admin.verify_holds, admin_erase.erase_account,
        audit.write_checkpoint, audit.rotate_signing_key, *admin_users.ROUTES,
        *admin_limits.ROUTES, *admin_sync.ROUTES, *admin_incidents.ROUTES,
        *admin_probes.ROUTES, *admin_credit.ROUTES,
    ])


def _finance_routes() -> Router:
    """Finance reads demand the separately granted finance:read (1.4)."""
    return Router(path="/", guards=[staff("finance:read")], route_handlers=[
        finance.balance, finance.statement, trial_balance, liabilities,
    ])


def create_litestar(gateway) -> Litestar:
    app = Litestar(
        route_handlers=[
            inference.chat_completions, inference.embeddings, inference.completions,
            messages.messages, responses.create_response, responses.get_response,
            responses.delete_response,
            messages.count_tokens,
            models.list_models, models.get_model, models.list_providers,
            self_service.own_balance, self_service.own_ledger, self_service.own_limits,
            *keys.ROUTES, *routes.ROUTES,
            _admin_routes(), _finance_routes(),
            audit.events, audit.stream, audit.entries, audit.entry, audit.checkpoints,
            audit.checkpoint, audit.public_keys, audit.projections, audit.event_schemas,
            audit.verify, list_security_events,
            health.health, health.health_ready, *status.ROUTES, *uptime.ROUTES,
        ],
        exception_handlers={
            DomainError: domain_error_handler,
            HTTPException: http_error_handler,
            Exception: internal_error_handler,
        },
        on_startup=[gateway.start_async],
        on_shutdown=[gateway.stop_async],
        request_max_body_size=BODY_LIMIT + READ_SLACK,
        openapi_config=None,
        debug=False,
    )
    app.state.gateway = gateway
    return app
