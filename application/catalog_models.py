"""Model and alias commands (5.3, 6.2, 2.2, 2.4, 3.5): what admins set by hand, as events.

Everything here is the admin layer of the catalog, which sync never overwrites (5.2).
"""

from __future__ import annotations

from typing import Any

from eventsourcing.application import AggregateNotFoundError

from domain.catalog import Alias, Model, Provider
from domain.errors import DomainError
from domain.model_names import CANONICAL, quoted
from domain.pricing import PriceError, Prices
from domain.selection import STRATEGIES

MAX_MODEL_ID = 200
MODALITIES = ("text", "image", "audio", "embedding")
CAPABILITIES = ("streaming", "tools", "vision", "json_mode", "json_schema", "reasoning",
                "logprobs", "prompt_caching")
SCORE_CATEGORIES = ("general", "code", "reasoning", "math", "creative", "summarization",
                    "translation", "extraction", "qa")
ALIAS_MAX = 64


def int_in(value: object, low: int, high: int, param: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise DomainError("invalid_request", f"{param} must be an integer from {low} to {high}",
                          param=param)


def canonical_id(model_id: str) -> str:
    model_id = model_id.lower()
    if len(model_id) > MAX_MODEL_ID or not CANONICAL.match(model_id) \
            or model_id == "gatewayz/echo":
        raise DomainError("invalid_model", f"model id {quoted(model_id)} must look like "
                          "org/name (lower case)", param="model_id")
    return model_id


def _listed(values: Any, allowed: tuple[str, ...], param: str) -> list[str]:
    if not isinstance(values, list) or not values or not set(values) <= set(allowed):
        raise DomainError("invalid_request", f"{param} must be a list from "
                          f"{', '.join(allowed)}", param=param)
    return sorted(set(values))


def metadata_fields(body: dict) -> dict:
    """The 5.3 metadata an admin may set with a price, validated."""
    out: dict = {}
    if "name" in body:
        if not isinstance(body["name"], str) or not 1 <= len(body["name"]) <= 200:
            raise DomainError("invalid_request", "name must have 1 to 200 characters",
                              param="name")
        out["name"] = body["name"]
    if "context_length" in body:
        int_in(body["context_length"], 1, 100_000_000, "context_length")
        out["context_length"] = body["context_length"]
    for field in ("input_modalities", "output_modalities"):
        if field in body:
            out[field] = _listed(body[field], MODALITIES, field)
    if "capabilities" in body:
        caps = body["capabilities"]
        out["capabilities"] = [] if caps == [] else _listed(caps, CAPABILITIES,
                                                              "capabilities")
    if "context_length" in out:  # a chat price implies text in and out unless told
        out.setdefault("input_modalities", ["text"])
        out.setdefault("output_modalities", ["text"])
    return out


class CatalogModels:
    def __init__(self, service: Any) -> None:
        self.service = service  # CatalogService: its app, clock, _save and view

    def _model(self, model_id: str) -> Model:
        try:
            return self.service.app.repository.get(Model.create_id(model_id))
        except AggregateNotFoundError:
            return Model(model_id=model_id)

    def _provider_exists(self, slug: object) -> None:
        try:
            self.service.app.repository.get(
                Provider.create_id(slug if isinstance(slug, str) else ""))
        except AggregateNotFoundError:
            raise DomainError("invalid_request", "provider must name a registered provider",
                              param="provider") from None

    def set_prices(self, model_id: str, body: dict, actor: str) -> str:
        model_id = canonical_id(model_id)
        slug = body.get("provider")
        self._provider_exists(slug)
        raw = body.get("prices")
        if not isinstance(raw, dict):
            raise DomainError("invalid_request", "prices must be an object", param="prices")
        try:
            prices = Prices.from_json(raw)
        except PriceError as error:
            raise DomainError("invalid_request", str(error),
                              param=f"prices.{error.param}") from None
        native = body.get("native_model_id", model_id.split("/", 1)[1])
        if not isinstance(native, str) or not 1 <= len(native) <= 200:
            raise DomainError("invalid_request", "native_model_id must be a string",
                              param="native_model_id")
        max_out = body.get("max_output_tokens")
        if max_out is not None:
            int_in(max_out, 1, 10_000_000, "max_output_tokens")
        fields = metadata_fields(body)
        model = self._model(model_id)
        model.set_price(slug, prices.to_json(), native, max_out,
                        self.service.clock.now().isoformat(), actor)
        if fields:
            model.describe(fields, actor)
        self.service._save(model)
        return model_id

    def set_routing(self, model_id: str, body: dict, actor: str) -> dict:
        model_id = canonical_id(model_id)
        providers = body.get("providers", [])
        strategy = body.get("strategy")
        if not isinstance(providers, list) or len(providers) > 20 or not all(
                isinstance(p, str) and 2 <= len(p) <= 40 for p in providers):
            raise DomainError("invalid_request", "providers must be a list of at most 20 "
                              "provider slugs", param="providers")
        if strategy is not None and strategy not in STRATEGIES:
            raise DomainError("invalid_request",
                              f"strategy must be one of {', '.join(STRATEGIES)}",
                              param="strategy")
        for slug in providers:
            self._provider_exists(slug)
        model = self._model(model_id)
        model.set_routing(list(providers), strategy, actor)
        self.service._save(model)
        return {"model": model_id, "providers": providers, "strategy": strategy}

    def set_maintenance(self, model_id: str, on: bool, body: dict, actor: str) -> dict:
        model_id = canonical_id(model_id)
        reason = body.get("reason", "")
        if not isinstance(reason, str) or len(reason) > 500:
            raise DomainError("invalid_request", "reason must be a string of at most 500 "
                              "characters", param="reason")
        model = self._model(model_id)
        if model.maintenance != on:  # already so: no event, the same answer
            if on:
                model.start_maintenance(reason, actor)
            else:
                model.end_maintenance(actor)
            self.service._save(model)
        return {"object": "model_maintenance", "model": model_id, "maintenance": on}

    def set_scores(self, model_id: str, body: dict, actor: str) -> dict:
        model_id = canonical_id(model_id)
        scores = body.get("scores", body)
        if not isinstance(scores, dict) or not scores or not set(scores) <= set(
                SCORE_CATEGORIES):
            raise DomainError("invalid_request", "scores must map categories from "
                              f"{', '.join(SCORE_CATEGORIES)} to integers", param="scores")
        for category, value in scores.items():
            int_in(value, 0, 100, f"scores.{category}")
        model = self._model(model_id)
        model.set_scores(dict(sorted(scores.items())), actor)
        self.service._save(model)
        return {"model": model_id, "benchmark_scores": scores}

    def set_alias(self, alias: str, body: dict, actor: str) -> dict:
        alias = alias.lower()
        if not 1 <= len(alias) <= ALIAS_MAX or "/" in alias or not all(
                c.isalnum() or c in "._:-" for c in alias) or not alias.isascii():
            raise DomainError("invalid_request", "an alias has 1 to 64 characters from "
                              "a-z, 0-9, '.', '_', ':' and '-'", param="alias")
        target = body.get("target")
        if not isinstance(target, str):
            raise DomainError("invalid_request", "target must be a canonical model id",
                              param="target")
        target = target.lower()
        snap = self.service.view.snapshot
        if target in snap.aliases and target not in snap.meta:
            raise DomainError("invalid_request", "an alias cannot point at another alias",
                              param="target")
        target = canonical_id(target)
        if target not in snap.meta and target not in snap.offers:
            raise DomainError("invalid_request", f"{quoted(target)} is not in the catalog",
                              param="target")
        if alias in snap.meta or alias in snap.offers:
            raise DomainError("conflict", "an alias cannot shadow a canonical model id",
                              param="alias")
        try:
            entry = self.service.app.repository.get(Alias.create_id(alias))
            entry.retarget(target, actor)
        except AggregateNotFoundError:
            entry = Alias(alias=alias, target=target, actor=actor)
        self.service._save(entry)
        return {"alias": alias, "target": target}

    def remove_alias(self, alias: str, actor: str) -> None:
        alias = alias.lower()
        snap = self.service.view.snapshot
        if alias not in snap.aliases:
            raise DomainError("not_found", f"no alias {quoted(alias)}", param="alias")
        try:
            entry = self.service.app.repository.get(Alias.create_id(alias))
        except AggregateNotFoundError:  # a shipped alias: removed by an admin row
            entry = Alias(alias=alias, target=snap.aliases[alias], actor=actor)
        entry.remove(actor)
        self.service._save(entry)
