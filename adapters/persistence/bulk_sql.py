"""One PostgreSQL statement for a run of single-row writes (the projector's BatchCursor).

psycopg spends ~10 us of CPU per row of an ``executemany`` and the server plans each
row's statement; here a run of rows becomes one statement over the rows sent as one JSON
array, read back with ``json_populate_recordset(NULL::table, ...)``, so every value takes
its column's type, as a parameter of the single-row statement does (~1.5 us a row).

- ``INSERT INTO t (cols) VALUES (...)[, (...)] [ON CONFLICT ...]`` (items ``%s``, a quoted
  literal, an integer or NULL) becomes ``INSERT INTO t (cols) SELECT ... ORDER BY
  ordinality [ON CONFLICT ...]``: rows go in queue order, so DO NOTHING keeps the first of
  two equal keys, as one row at a time would.
- ``UPDATE t SET c = %s, d = d + %s ... WHERE k = %s`` becomes ``UPDATE t SET c = v.c,
  d = t.d + v.d FROM (the rows) v WHERE t.k = v.k``: each row of ``t`` is updated once
  from its own old values, as one statement per key would.

Not converted (the caller runs the rows one by one instead): a value that is not str, int
or None (JSON would change a float or a bool), a column mixing Python types, and two rows
naming one key in an UPDATE or an ON CONFLICT DO UPDATE (one statement may not update a
row twice).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import msgspec

_ITEM = r"(?:%s|'[^'%]*'|-?\d+|NULL)"
_TUPLE = rf"\({_ITEM}(?:, ?{_ITEM})*\)"
_INSERT = re.compile(
    rf"INSERT INTO (\w+) ?\((\w+(?:, ?\w+)*)\) VALUES ({_TUPLE}(?:, ?{_TUPLE})*)"
    r"( ON CONFLICT(?: ?\((\w+(?:, ?\w+)*)\))? DO (NOTHING|UPDATE SET .*))?", re.I | re.S)
_SET = re.compile(r"(\w+) = (?:(\w+) ([-+]) )?%s")
_UPDATE = re.compile(r"UPDATE (\w+) SET (.+) WHERE (\w+) = %s", re.I | re.S)
_NONE = type(None)
_JSON_SAFE = {str, int}  # exactly: bool, float and the rest go one row at a time
_ENCODE = msgspec.json.Encoder().encode  # ~10x json.dumps of dicts; same JSON values


class Shape:
    """A statement taken apart: the one statement for many rows, and each row's fields."""

    sql: str
    fields: list[str]  # the JSON name of each parameter of one row
    key: list[int] | None = None  # positions of a key that must not repeat in one run
    _row: Any = None  # a msgspec Struct type that encodes a row as {field: value, ...}

    def bulk(self, runs: list[Sequence[Any]]) -> str | None:
        """The runs' rows as one JSON array, or None when JSON could change their meaning."""
        width = len(self.fields)
        rows = runs
        if any(len(params) != width for params in runs):
            if any(len(params) % width for params in runs):
                return None
            rows = [params[i:i + width] for params in runs
                    for i in range(0, len(params), width)]
        for column in zip(*rows, strict=True):
            kinds = set(map(type, column))
            kinds.discard(_NONE)
            if len(kinds) > 1 or not kinds <= _JSON_SAFE:
                return None
        if self.key is not None and len({tuple(r[i] for i in self.key) for r in rows}) \
                != len(rows):
            return None
        if self._row is None:  # attributes f0, f1, ... so that any column name will do
            self._row = msgspec.defstruct("Row", [f"f{i}" for i in range(width)], rename={
                f"f{i}": name for i, name in enumerate(self.fields)})
        try:
            return _ENCODE([self._row(*row) for row in rows]).decode()
        except (UnicodeEncodeError, OverflowError, TypeError):  # one by one, as before
            return None


class _Insert(Shape):
    def __init__(self, match: re.Match) -> None:
        table, columns, values, tail, keys, action = match.groups()
        names = [c.strip().lower() for c in columns.split(",")]
        tuples = re.findall(_TUPLE, values)
        items = re.findall(_ITEM, tuples[0])
        self.valid = len(set(tuples)) == 1 and len(items) == len(names)
        self.fields = [c for c, item in zip(names, items, strict=False) if item == "%s"]
        if action and action.upper() != "NOTHING":
            conflict = [k.strip().lower() for k in (keys or "").split(",")]
            self.valid = self.valid and all(n in self.fields for n in conflict)
            self.key = [self.fields.index(n) for n in conflict if n in self.fields]
        select = ", ".join(f"r.{c}" if item == "%s" else item
                           for c, item in zip(names, items, strict=False))
        self.sql = (f"INSERT INTO {table} ({', '.join(names)}) SELECT {select} FROM "
                    f"json_populate_recordset(NULL::{table}, %s::json) WITH ORDINALITY AS r "
                    f"ORDER BY r.ordinality{tail or ''}")


class _Update(Shape):
    def __init__(self, match: re.Match) -> None:
        table, assignments, key = match[1], match[2], match[3].lower()
        parts = [_SET.fullmatch(part.strip()) for part in assignments.split(",")]
        sets = [part.groups() for part in parts if part is not None]
        self.fields = [target.lower() for target, _, _ in sets] + [key]
        # c = c + %s only (another column's type could differ), each column once
        self.valid = len(sets) == len(parts) and len(set(self.fields)) == len(self.fields) \
            and all(source is None or source.lower() == target.lower()
                    for target, source, _ in sets)
        self.key = [len(sets)]
        values = ", ".join(f"{target} = " + (f"{table}.{source} {sign} " if source else "")
                           + f"v.{target}" for target, source, sign in sets)
        self.sql = (f"UPDATE {table} SET {values} FROM json_populate_recordset(NULL::{table}, "
                    f"%s::json) AS v WHERE {table}.{key} = v.{key}")


_SHAPES: dict[str, Shape | None] = {}


def shape(sql: str) -> Shape | None:
    """The statement's Shape, or None when it is not one of the two forms above."""
    if sql not in _SHAPES:
        if len(_SHAPES) > 1000:
            _SHAPES.clear()
        text = " ".join(sql.split())
        found: Shape | None = None
        if match := _INSERT.fullmatch(text):
            found = _Insert(match)
        elif match := _UPDATE.fullmatch(text):
            found = _Update(match)
        _SHAPES[sql] = found if found is not None and found.valid else None
    return _SHAPES[sql]
