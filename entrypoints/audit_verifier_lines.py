"""Reading bundle lines: strict JSON, and proof that a line already is canonical text."""

from __future__ import annotations

import json
import re
from typing import Any


class BundleJSONError(ValueError):
    """A line is not JSON the bundle format allows (syntax, duplicate keys, floats)."""


def is_plain(line: str) -> bool:
    """True when every string in this raw JSON line is ASCII needing no escape.

    Raw JSON cannot hold a quote or a control character inside a string except as a
    backslash escape, so an ASCII line without backslashes qualifies.
    """
    return line.isascii() and "\\" not in line


def is_canonical_text(line: str) -> bool:
    """The whitespace and number half of proving a plain line canonical (``LineParser``)."""
    if not line or line[0] != "{" or line[-1] != "}":
        return False
    if " " in line or "\t" in line or "\r" in line:
        # Outside strings only: in a plain line every other piece between quotes is one.
        outside = "".join(line.split('"')[::2])
        if " " in outside or "\t" in outside or "\r" in outside:
            return False
    return not ((":-0" in line or ",-0" in line or "[-0" in line)
                and _NEGATIVE_ZERO.search(line))


# A number token follows ':', ',' or '[' in a line without whitespace; ``-0`` elsewhere is
# inside a string (a UUID, say), and a match inside one only costs the fast path.
_NEGATIVE_ZERO = re.compile(r"[:,\[]-0(?![0-9])")


def reject_float(text: str) -> Any:
    raise BundleJSONError(f"number {text} is not an integer")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    # A repeated key would let two tools read two different entries from one line.
    if len(out) != len(pairs):
        raise BundleJSONError("an object repeats a key")
    return out


_STRICT = json.JSONDecoder(parse_float=reject_float, parse_constant=reject_float,
                           object_pairs_hook=_unique)


def loads(text: str) -> Any:
    """Parse bundle JSON: strict, integers only, no repeated keys."""
    try:
        return _STRICT.decode(text)
    except BundleJSONError:
        raise
    except (ValueError, RecursionError) as exc:
        raise BundleJSONError(str(exc) or "nesting too deep") from None


class LineParser:
    """Parses bundle lines and proves which are canonical text already.

    Re-encoding is most of the cost of verification, and the exporter writes canonical
    lines, so proving a line canonical is the fast path. In a plain line (``is_plain``) a
    string token is its canonical form, an integer token is unless it is ``-0``, literals
    are; what is left is whitespace (``is_canonical_text``), key order and repeated keys,
    which the object hook observes. Any doubt falls back to the strict parser and the
    encoder. One instance per verification: the hook keeps per-parse state.
    """

    def __init__(self) -> None:
        self._keys = 0
        self._unsorted = False
        self._scan = json.JSONDecoder(parse_float=reject_float, parse_constant=reject_float,
                                      object_hook=self._object).scan_once

    def _object(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._keys += len(obj)
        if len(obj) > 1:
            keys = [*obj]
            if keys != sorted(keys):
                self._unsorted = True
        return obj

    def parse(self, line: str) -> tuple[Any, str | None, bool]:
        """The value, the line itself if it is canonical text (else None), and plainness."""
        self._keys, self._unsorted = 0, False
        try:
            value, end = self._scan(line, 0)
        except (StopIteration, ValueError, RecursionError):
            end = -1  # the strict parser below says what is wrong
        plain = line.isascii() and "\\" not in line
        # In a line without whitespace, '":' ends each key and nothing else, so fewer keys
        # in the parsed objects than that means a key was repeated.
        if (end == len(line) and plain and not self._unsorted
                and line.count('":') == self._keys and is_canonical_text(line)):
            return value, line, True
        return loads(line), None, plain
