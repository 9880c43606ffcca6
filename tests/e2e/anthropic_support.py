"""Helpers of the cross-format tests: a model served by the fake Anthropic upstream, and the
official Anthropic SDK pointed at the gateway."""

from __future__ import annotations

import anthropic

ANTHROPIC_MODEL = "claude/sonnet-x"
ANTHROPIC_NATIVE = "claude-sonnet-x"


def price_anthropic(served, fake, slug: str = "anthro", model: str = ANTHROPIC_MODEL,
                    input_price: str = "1", output_price: str = "2", priority: int = 100,
                    **extra) -> None:
    response = served.admin("POST", "/admin/providers", json={
        "slug": slug, "base_url": fake.base_url, "allow_private": True, "priority": priority,
        "credential": fake.api_key, "timeout_ms": 5000, "protocol": "anthropic"})
    assert response.status_code == 201, response.text
    served.set_price(model, slug, input_price=input_price, output_price=output_price,
                     native_model_id=ANTHROPIC_NATIVE, **extra)


def anthropic_sdk(served, key: str, **kwargs) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=served.url, api_key=key, max_retries=0, **kwargs)
