"""Independent offline verifier of audit bundles (spec 11.6-11.8): `verify BUNDLE [options]`.

It imports only the standard library and ``cryptography``: spec 11.6 requires the verifier
to share no hashing or encoding code with the audit writer. The bundle format, canonical
encoding and check definitions are in docs/audit-bundle.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from entrypoints.audit_verifier_canonical import ZERO_HASH, parse_z
from entrypoints.audit_verifier_checkpoints import (
    CHECKS,
    Failure,
    Unverifiable,
    check_checkpoints,
    earliest,
    parse_checkpoints,
    parse_public_keys,
    parse_record,
)
from entrypoints.audit_verifier_checks import EntryChecker
from entrypoints.audit_verifier_events import EventIndex
from entrypoints.audit_verifier_lines import BundleJSONError, loads

FORMAT = "gatewayz-audit-bundle/1"
CHAIN_ONLY_WARNING = ("chain only: checkpoints were not checked, so a truncated or rewritten "
                      "tail of the chain cannot be detected")

__all__ = ["CHECKS", "Failure", "Report", "main", "verify_bundle", "verify_records"]


@dataclass
class Report:
    """Outcome of one verification: exit code 0 valid, 1 tampering found, 2 could not verify."""

    valid: bool
    exit_code: int
    entries: int = 0
    checkpoints: int = 0
    events: int = 0
    first_failure: Failure | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def verify_records(manifest: Any, events: Iterable[Any] | Callable[[], Iterable[Any]],
                   entries: Iterable[Any], checkpoints: Iterable[Any] = (),
                   public_keys: Any = None, *, from_seq: int | None = None,
                   chain_only: bool = False) -> Report:
    """The verification proper, over records that are raw JSON lines or parsed objects.

    ``events``: a list, or a function returning a fresh iterable (read once in full, and
    again only to explain a mismatch). ``public_keys``: the parsed public-keys.json.
    """
    try:
        return _verify(manifest, events, entries, list(checkpoints), public_keys,
                       from_seq=from_seq, chain_only=chain_only)
    except Unverifiable as exc:
        return Report(valid=False, exit_code=2, error=str(exc))


def _verify(manifest: Any, events: Any, entries: Iterable[Any], checkpoint_records: list[Any],
            public_keys: Any, *, from_seq: int | None, chain_only: bool) -> Report:
    manifest = parse_record(manifest, "manifest.json")[0]
    if manifest.get("format") != FORMAT:
        raise Unverifiable(f"manifest.json: format is not {FORMAT!r}")
    created_at = manifest.get("created_at")
    if parse_z(created_at) is None:
        raise Unverifiable("manifest.json: created_at is not a YYYY-MM-DDTHH:MM:SS.ffffffZ time")
    start = 1 if from_seq is None else from_seq
    if start < 1:
        raise Unverifiable("--from must be 1 or more")
    warnings = [CHAIN_ONLY_WARNING] if chain_only else []
    checkpoints = [] if chain_only else parse_checkpoints(checkpoint_records)
    first = None
    trail_start = ""
    if checkpoints:
        if public_keys is None:
            raise Unverifiable("the bundle has checkpoints but no public keys to check them")
        keys = parse_public_keys(public_keys)
        first = check_checkpoints(checkpoints, keys)
        trail_start = min((k.valid_from for k in keys), default="")
    elif not chain_only:
        warnings.append("no checkpoints: the chain alone protects the entries (a truncated "
                        "or rewritten tail cannot be detected); the bundle passes only while "
                        "it has fewer than 1,000 entries, all from the last 1 h 10 min")

    fresh = events if callable(events) else (lambda: events)
    index = EventIndex(fresh())
    entry_iter = iter(entries)
    skipped, anchor = _skip_before(entry_iter, start, checkpoints)
    if start > 1:
        warnings.append(f"verified from seq {start}: earlier entries, and audited events "
                        "before each context's first entry in range, were not checked")
        if anchor is None:
            warnings.append(f"the prev_hash of seq {start} was taken as given: no checkpoint "
                            f"or entry at seq {start - 1} to compare it with")
    checker = EntryChecker(index, lambda c, p: _find_event(fresh(), c, p), checkpoints,
                           start=start, anchor=ZERO_HASH if start == 1 else anchor,
                           created_at=created_at, chain_only=chain_only,
                           trail_start=trail_start)
    complete = True
    for record in _chain(skipped, entry_iter):
        if first is not None and checker.seq > first.seq:
            complete = False  # a checkpoint failed already, and nothing later comes first
            break
        failure = checker.feed(record)
        if failure is not None:
            # Entries are fed in seq order, so nothing later can fail at a lower seq.
            first, complete = earliest(first, failure), False
            break
    if checker.before_trail:
        warnings.append(f"{checker.before_trail} entries cover events recorded over 1 h "
                        "10 min before the first signing key existed: history older than "
                        "the audit trail, held to the 1,000-entry rule but not to the 1 h rule")
    if complete:
        first = earliest(first, checker.finish())
        warnings.extend(_count_warnings(manifest, index.count, checker.checked, start,
                                        len(checkpoint_records), chain_only))
        if checkpoints and checker.seq - 1 > checkpoints[-1].seq:
            warnings.append(f"{checker.seq - 1 - checkpoints[-1].seq} entries after the last "
                            f"checkpoint (seq {checkpoints[-1].seq}) are protected by the "
                            "chain alone until the next checkpoint")
    return Report(valid=first is None, exit_code=0 if first is None else 1,
                  entries=checker.checked, checkpoints=len(checkpoints), events=index.count,
                  first_failure=first, warnings=warnings)


def _skip_before(entries: Iterator[Any], start: int, checkpoints: list[Any]
                 ) -> tuple[list[Any], str | None]:
    """Drop leading entries below ``start``; the hash seq ``start`` must link to, if known."""
    if start == 1:
        return [], ZERO_HASH
    anchor = next((c.head_hash for c in checkpoints if c.seq == start - 1), None)
    for record in entries:
        entry = parse_record(record, "entry before --from")[0]
        seq = entry.get("seq")
        if type(seq) is not int or seq >= start:
            return [record], anchor
        if seq == start - 1 and anchor is None:
            anchor = entry.get("hash") if type(entry.get("hash")) is str else None
    return [], anchor


def _chain(first: list[Any], rest: Iterator[Any]) -> Iterator[Any]:
    yield from first
    yield from rest


def _find_event(records: Iterable[Any], context: str, position: int) -> Any:
    for record in records:
        event = parse_record(record, "event")[0]
        if event.get("context") == context and event.get("position") == position:
            return record
    return None


def _count_warnings(manifest: dict[str, Any], events: int, entries: int, start: int,
                    checkpoints: int, chain_only: bool) -> list[str]:
    # The manifest is not signed, so a wrong count proves nothing; it is worth a look.
    found = {"events": events, "entries": entries if start == 1 else None,
             "checkpoints": None if chain_only else checkpoints}
    return [f"manifest.json says {manifest.get(name)!r} {name}, the bundle has {count}"
            for name, count in found.items() if count is not None and manifest.get(name) != count]


def _lines(path: Path) -> Iterator[str]:
    """The non-empty lines of a JSON-lines file, without their line ends."""
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line[-1:] == "\n":
                    line = line[:-1]
                if line:
                    yield line
    except (OSError, UnicodeDecodeError) as exc:
        raise Unverifiable(f"{path.name}: {exc}") from None


def _document(path: Path) -> Any:
    try:
        return loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, BundleJSONError) as exc:
        raise Unverifiable(f"{path}: {exc}") from None


def verify_bundle(path: str | Path, *, public_keys: str | Path | None = None,
                  checkpoints: str | Path | None = None, from_seq: int | None = None,
                  chain_only: bool = False) -> Report:
    """Verify the bundle directory ``path``.

    ``checkpoints``: a directory of exported checkpoint files (``*.json``), used instead of
    the bundle's checkpoints.jsonl; ``public_keys``: a file used instead of its
    public-keys.json. Both let an auditor rely on copies the database operator cannot
    rewrite.
    """
    bundle = Path(path)
    try:
        for name in ("manifest.json", "events.jsonl", "entries.jsonl"):
            if not (bundle / name).is_file():
                raise Unverifiable(f"{bundle / name} is missing")
        records: list[Any] = []
        if checkpoints is not None:
            folder = Path(checkpoints)
            if not folder.is_dir():
                raise Unverifiable(f"{folder} is not a directory")
            for file in sorted(folder.glob("*.json")):
                records.extend(_lines(file))
        elif (bundle / "checkpoints.jsonl").is_file():
            records = list(_lines(bundle / "checkpoints.jsonl"))
        keys_path = Path(public_keys) if public_keys is not None else bundle / "public-keys.json"
        if public_keys is not None and not keys_path.is_file():
            raise Unverifiable(f"{keys_path} is missing")
        keys = _document(keys_path) if keys_path.is_file() else None
        manifest = _document(bundle / "manifest.json")
    except Unverifiable as exc:
        return Report(valid=False, exit_code=2, error=str(exc))
    return verify_records(manifest, lambda: _lines(bundle / "events.jsonl"),
                          _lines(bundle / "entries.jsonl"), records, keys,
                          from_seq=from_seq, chain_only=chain_only)


def summary(report: Report, bundle: str) -> str:
    lines = []
    if report.exit_code == 2:
        lines.append(f"COULD NOT VERIFY {bundle}: {report.error}")
    elif report.valid:
        lines.append(f"VALID {bundle}: {report.entries} entries, {report.events} events, "
                     f"{report.checkpoints} checkpoints")
    else:
        failure = report.first_failure
        assert failure is not None
        lines.append(f"TAMPERING FOUND in {bundle} at seq {failure.seq}, check "
                     f"{CHECKS[failure.check]} ({failure.check}): {failure.detail}")
    lines.extend(f"warning: {w}" for w in report.warnings)
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gatewayz audit verify",
                                     description="Verify a Gatewayz audit bundle offline.")
    parser.add_argument("bundle", help="the bundle directory")
    parser.add_argument("--checkpoints", metavar="DIR",
                        help="exported checkpoint files (*.json) to use instead of the bundle's")
    parser.add_argument("--public-keys", metavar="FILE",
                        help="public keys to use instead of the bundle's public-keys.json")
    parser.add_argument("--from", dest="from_seq", type=int, metavar="SEQ",
                        help="verify from this seq on")
    parser.add_argument("--chain-only", action="store_true",
                        help="skip checkpoint checks (cannot detect a truncated tail)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``verify BUNDLE [...]`` (the word ``verify`` may be left out); returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["verify"]:
        args_list = args_list[1:]
    try:
        args = _parser().parse_args(args_list)
    except SystemExit as exc:  # argparse has already printed why
        return 0 if exc.code == 0 else 2
    try:
        report = verify_bundle(args.bundle, public_keys=args.public_keys,
                               checkpoints=args.checkpoints, from_seq=args.from_seq,
                               chain_only=args.chain_only)
    except Exception as exc:  # noqa: BLE001 - a crash must not exit 1, which means tampering
        report = Report(valid=False, exit_code=2, error=f"verifier error: {exc!r}")
    print(report.to_json() if args.json else summary(report, args.bundle))
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
