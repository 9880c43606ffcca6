"""Hugging Face enrichment (spec 5.6): a model's public stats from the Hub API.

Optional by design: every failure gives None, so the caller keeps the last values or omits
the object, and never blocks catalog sync on it. The base URL is checked like a provider's
and redirects are not followed (a renamed repository's 307 is a miss, not a hop elsewhere).
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import aiohttp

from adapters.model_listing import (
    ListingError,
    bounded_int,
    bounded_text,
    read_json_capped,
    valid_hf_id,
)
from domain.network_rules import BaseUrlError, parse_base_url

HF_BASE_URL = "https://huggingface.co"
# A model page with its file list is tens of KB; a few MB is generous and still bounded.
MAX_HF_BODY_BYTES = 4 * 1024 * 1024
MAX_COUNT = 10**13  # downloads and likes
MAX_PARAMETERS = 10**14  # 100 trillion: larger is a broken number, not a model


async def fetch_hf(session: aiohttp.ClientSession, hf_id: str, *, base_url: str = HF_BASE_URL,
                   allow_private: bool = False, timeout_s: float = 10.0) -> dict[str, Any] | None:
    """{id, downloads, likes, parameters, pipeline_tag, author, license} or None on any error.

    ``session`` should come from ``CheckedSessions.get(allow_private)``; fields the Hub does
    not give (or gives out of bounds) are None.
    """
    if not valid_hf_id(hf_id):
        return None
    try:
        root = parse_base_url(base_url, allow_private).url
    except BaseUrlError:
        return None
    url = f"{root}/api/models/{quote(hf_id, safe='/')}"
    try:
        async with asyncio.timeout(timeout_s):
            body = await read_json_capped(session, url, headers={"Accept": "application/json"},
                                          params=None, timeout_s=timeout_s,
                                          max_bytes=MAX_HF_BODY_BYTES)
    except (ListingError, TimeoutError):
        return None
    if not isinstance(body, dict):
        return None
    safetensors = body.get("safetensors")
    total = safetensors.get("total") if isinstance(safetensors, dict) else None
    return {
        "id": body["id"] if valid_hf_id(body.get("id")) else hf_id,
        "downloads": bounded_int(body.get("downloads"), 0, MAX_COUNT),
        "likes": bounded_int(body.get("likes"), 0, MAX_COUNT),
        "parameters": bounded_int(total, 1, MAX_PARAMETERS),
        "pipeline_tag": bounded_text(body.get("pipeline_tag"), 100),
        "author": bounded_text(body.get("author"), 100),
        "license": _license(body),
    }


def _license(body: dict[str, Any]) -> str | None:
    # The model card's front matter is what the author wrote; the "license:" tag is the Hub's
    # copy of it, present even when the card data is missing.
    card = body.get("cardData")
    value = card.get("license") if isinstance(card, dict) else None
    if isinstance(value, list):  # cards may list several licences; the first is the main one
        value = next((v for v in value[:10] if isinstance(v, str)), None)
    if bounded_text(value, 100):
        return bounded_text(value, 100)
    tags = body.get("tags")
    if isinstance(tags, list):
        for tag in tags[:500]:
            if isinstance(tag, str) and tag.startswith("license:"):
                return bounded_text(tag[len("license:"):], 100)
    return None
