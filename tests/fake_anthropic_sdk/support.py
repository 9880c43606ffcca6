"""A raw POST to the fake, for requests the SDK would refuse to send."""

from __future__ import annotations

import httpx
from fakes.anthropic_upstream import FakeAnthropic


def raw_post(fake: FakeAnthropic, body: object, **headers: str) -> httpx.Response:
    sent = {"x-api-key": fake.api_key, "anthropic-version": "2023-06-01", **headers}
    return httpx.post(f"{fake.base_url}/messages", json=body,
                      headers={k: v for k, v in sent.items() if v})
