"""Identifiers: prefixed ULIDs for public ids, deterministic UUIDs for event streams."""

from __future__ import annotations

from uuid import UUID, uuid5

from ulid import ULID

# Fixed namespace so a stream name always maps to the same aggregate UUID, on every node.
STREAM_NAMESPACE = UUID("6f1b8a52-3c1e-4f0e-9a4e-5b0c2d7e9a11")


def new_id(prefix: str) -> str:
    """A public id such as ``acct_01J...``: prefix + 26-character ULID."""
    return f"{prefix}_{ULID()}"


def stream_uuid(stream_name: str) -> UUID:
    """The aggregate id behind a stream name such as ``wallet:acct_01J...``.

    Deriving it from the natural key makes a duplicate creation collide on version 1
    instead of silently opening a second stream.
    """
    return uuid5(STREAM_NAMESPACE, stream_name)

