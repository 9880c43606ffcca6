"""JSON Schemas of every event type and version, published at ``GET /audit/schemas`` (11.13).

Built from the domain's event classes, so a schema can never drift from what is saved: the
schema of an event's ``data`` is its annotated fields, and every version up to the class's
``class_version`` is listed (older versions differ by what their upcasters add).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types
import typing
from typing import Any

from eventsourcing.domain import Aggregate, CanMutateAggregate

import domain
from application.feed import type_name

_JSON_TYPES = {int: "integer", str: "string", bool: "boolean", list: "array",
               dict: "object", type(None): "null"}
_BASE_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic",
                "originator_id_type", "class_version"}


def event_classes() -> list[type]:
    found: dict[str, type] = {}
    for module_info in pkgutil.iter_modules(domain.__path__):
        module = importlib.import_module(f"domain.{module_info.name}")
        for _, aggregate in inspect.getmembers(module, inspect.isclass):
            if not issubclass(aggregate, Aggregate) or aggregate.__module__ != module.__name__:
                continue
            for _, member in inspect.getmembers(aggregate, inspect.isclass):
                # Created/Event are the library's generic bases, present on every aggregate.
                if issubclass(member, CanMutateAggregate) and \
                        member.__name__ not in ("Created", "Event") and \
                        member.__qualname__.startswith(aggregate.__name__ + "."):
                    found[member.__qualname__] = member
    return [found[name] for name in sorted(found)]


def _schema_of(annotation: Any) -> dict[str, Any]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        kinds = [_schema_of(a).get("type", "object") for a in typing.get_args(annotation)]
        return {"type": kinds}
    if origin is not None:
        annotation = origin
    return {"type": _JSON_TYPES.get(annotation, "object")}


def schemas() -> list[dict[str, Any]]:
    out = []
    for cls in event_classes():
        hints = typing.get_type_hints(cls)
        fields = {name: _schema_of(hint) for name, hint in hints.items()
                  if name not in _BASE_FIELDS and not name.startswith("_")}
        current = getattr(cls, "class_version", 1)
        name = type_name(object.__new__(cls))
        for version in range(1, current + 1):
            out.append({
                "type": name, "schema_version": version, "current": version == current,
                # The schema of the envelope's ``data``; rows of an older version are read
                # as the current one (upcasters fill what the old version lacked).
                "data_schema": {"$schema": "https://json-schema.org/draft/2020-12/schema",
                                "title": f"{name} v{version}", "type": "object",
                                "properties": fields, "required": sorted(fields)},
            })
    return out
