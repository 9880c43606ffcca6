"""Test-only generator of valid audit bundles (events, entries, signed checkpoints, keys)."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from entrypoints.audit_verifier import Report, verify_records
from entrypoints.audit_verifier_canonical import canonical

NAMESPACE = uuid.UUID("0b6f3c1e-8d2a-4e57-9c40-7a1d5e2b9f63")
ZERO = "0" * 64
START = datetime(2026, 12, 2, 1, 2, 3, 123456, tzinfo=UTC)
CAFE_NFD = unicodedata.normalize("NFD", "Café Zoë")  # hashed as NFC, stored as NFD


def z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dumps(obj: Any) -> str:
    """One bundle line, written canonically as the exporter is expected to."""
    # Canonical for ASCII data; other strings stay as stored (NFD included), so the
    # verifier's normalising path is exercised too.
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canon(obj: Any) -> bytes:
    # The standard library agrees with the canonical form on ASCII data (a free
    # cross-check of the verifier's encoder); other data goes through the encoder.
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("ascii") if text.isascii() else canonical(obj)


def entry_hash(entry: dict[str, Any]) -> str:
    body = canon({k: v for k, v in entry.items() if k != "hash"})
    return hashlib.sha256(bytes.fromhex(entry["prev_hash"]) + body).hexdigest()


def rehash(entries: list[dict[str, Any]], start: int = 0) -> None:
    """Recompute prev_hash and hash from index ``start`` on, as a forger would."""
    for i in range(start, len(entries)):
        entries[i]["prev_hash"] = entries[i - 1]["hash"] if i else ZERO
        entries[i]["hash"] = entry_hash(entries[i])


def signing_key(name: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(name.encode()).digest())


def public_key_b64(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def sign(body: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    return {"checkpoint": body, "signature": base64.b64encode(key.sign(canon(body))).decode()}


@dataclass
class Bundle:
    manifest: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    public_keys: dict[str, Any] = field(default_factory=dict)

    def verify(self, **options: Any) -> Report:
        return verify_records(self.manifest, self.events, self.entries, self.checkpoints,
                              self.public_keys, **options)

    def write(self, path: Path, *, checkpoints: bool = True) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        manifest = dict(self.manifest, entries=len(self.entries), events=len(self.events),
                        checkpoints=len(self.checkpoints) if checkpoints else 0)
        (path / "manifest.json").write_text(json.dumps(manifest, indent=2))
        (path / "public-keys.json").write_text(json.dumps(self.public_keys, indent=2))
        for name, rows in (("events", self.events), ("entries", self.entries),
                           ("checkpoints", self.checkpoints if checkpoints else [])):
            with (path / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
                handle.writelines(dumps(row) + "\n" for row in rows)
        return path


class Maker:
    """Generates a plausible history in commit order: events, their entries, checkpoints.

    Deterministic for a seed. ``rotate_at``: the first checkpoint seq signed by key "k2".
    """

    def __init__(self, *, seed: int = 0, checkpoint_every: int = 100,
                 step: timedelta = timedelta(seconds=1), rotate_at: int | None = None,
                 exotic: float = 0.5) -> None:
        self.rng = random.Random(seed)
        self.exotic = exotic  # share of values with non-ASCII, escapes or spaces
        self.every, self.step, self.rotate_at = checkpoint_every, step, rotate_at
        self.keys = {"k1": signing_key(f"k1-{seed}"), "k2": signing_key(f"k2-{seed}")}
        self.positions: dict[str, int] = {}
        self.versions: dict[str, int] = {}
        self.tick = 0
        self.seq, self.head = 0, ZERO
        self.last_checkpoint = (0, ZERO)
        self.rotated_at: datetime | None = None
        self.moment = START

    def public_keys(self) -> dict[str, Any]:
        k1_until = z(self.rotated_at) if self.rotated_at else None
        keys = [{"key_id": "k1", "algorithm": "ed25519", "public_key": public_key_b64(
            self.keys["k1"]), "valid_from": z(START - timedelta(days=1)), "valid_until": k1_until}]
        if self.rotated_at:
            keys.append({"key_id": "k2", "algorithm": "ed25519", "public_key": public_key_b64(
                self.keys["k2"]), "valid_from": z(self.rotated_at), "valid_until": None})
        return {"keys": keys}

    def run(self, entries: int) -> Iterator[tuple[str, dict[str, Any]]]:
        """("event" | "entry" | "checkpoint", row) in commit order, until ``entries`` entries."""
        while self.seq < entries:
            for event, audit in self._action():
                yield "event", event
                if audit is None:
                    continue
                yield "entry", self._entry(event, *audit)
                if self.seq % self.every == 0:
                    yield "checkpoint", self._checkpoint()
                if self.seq >= entries:
                    break

    def manifest(self) -> dict[str, Any]:
        return {"format": "gatewayz-audit-bundle/1", "created_at": z(self.moment + timedelta(
            seconds=1)), "entries": self.seq, "events": 0, "checkpoints": 0}

    def _checkpoint(self) -> dict[str, Any]:
        created = self.moment + timedelta(milliseconds=500)
        key_id = "k1"
        if self.rotate_at is not None and self.seq >= self.rotate_at:
            key_id = "k2"
            if self.rotated_at is None:
                self.rotated_at = created - timedelta(milliseconds=100)
        body = {"seq": self.seq, "head_hash": self.head,
                "previous_checkpoint_seq": self.last_checkpoint[0],
                "previous_checkpoint_hash": self.last_checkpoint[1],
                "created_at": z(created), "key_id": key_id}
        self.last_checkpoint = (self.seq, self.head)
        return sign(body, self.keys[key_id])

    def _event(self, context: str, stream: str, topic: str, data: dict[str, Any],
               actor: dict[str, Any] | None, **envelope: str) -> dict[str, Any]:
        self.tick += 1
        self.moment += self.step
        self.positions[context] = position = self.positions.get(context, 0) + 1
        self.versions[stream] = version = self.versions.get(stream, 0) + 1
        state = dict(data, timestamp=self._stamp())
        if self.tick % 7 == 0:
            state["class_version"] = 2
        if actor is not None:
            state["envelope"] = dict(envelope, actor=actor)
        return {"context": context, "position": position, "stream_id": stream,
                "version": version, "topic": topic, "state": state}

    def _stamp(self) -> str:
        # The forms a stored timestamp takes: isoformat, msgspec's Z, other offsets,
        # whole seconds without a fraction.
        moment = self.moment
        if self.tick % 97 == 0:
            moment = moment.replace(microsecond=0)
        if self.tick % 89 == 0:
            return moment.isoformat().replace("+00:00", "Z")
        if self.tick % 83 == 0:
            return moment.astimezone(timezone(timedelta(hours=2))).isoformat()
        return moment.isoformat()

    def _entry(self, event: dict[str, Any], action: str, target_type: str,
               summary: dict[str, Any]) -> dict[str, Any]:
        self.seq += 1
        state = event["state"]
        envelope = state.get("envelope", {"actor": {"kind": "system", "id": "gatewayz"}})
        kind = event["topic"].split(":")[1].replace("InferenceRequest.", "Request.")
        entry = {"seq": self.seq, "context": event["context"], "position": event["position"],
                 "event_id": str(uuid.uuid5(NAMESPACE, f"{event['stream_id']}:{event['version']}")),
                 "event_digest": hashlib.sha256(canon(event)).hexdigest(), "event_type": kind,
                 "recorded_at": z(datetime.fromisoformat(state["timestamp"])),
                 "actor": envelope["actor"], "target": {"type": target_type,
                                                        "id": event["stream_id"]},
                 "action": action, "summary": summary}
        if "command_id" in envelope:
            entry["command_id"] = envelope["command_id"]
        if "correlation_id" in envelope:
            entry["request_id"] = envelope["correlation_id"]
        entry["prev_hash"] = self.head
        entry["hash"] = self.head = entry_hash(entry)
        return entry

    def _text(self, exotic: str) -> str:
        return exotic if self.rng.random() < self.exotic else "plain"

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _action(self) -> list[tuple[dict[str, Any], tuple[str, str, dict[str, Any]] | None]]:
        roll = self.rng.random()
        if roll < 0.6:
            return self._request()
        if roll < 0.75:
            return self._wallet()
        if roll < 0.9:
            return self._key()
        stream = self._uuid()
        price = {"input_per_mtok_micros": self.rng.randrange(10**7), "output_per_mtok_micros": 0}
        event = self._event("catalog", stream, "domain.catalog:Model.PriceSet",
                            {"provider": "openai", "prices": price, "effective_at": None}, None)
        return [(event, ("model.price_set", "model", {"after": price}))]

    def _request(self) -> list[tuple[dict[str, Any], Any]]:
        stream, rng = self._uuid(), self.rng
        actor = {"kind": "api_key", "id": f"key_{rng.randrange(10**6)}", "key_prefix": "gw_live_x"}
        ids = {"correlation_id": f"req_{stream[:8]}"}
        topic = "domain.inference_request:InferenceRequest."
        placed = self._event("requests", stream, topic + "HoldPlaced", {
            "account_id": f"acct_{rng.randrange(1000)}", "hold_micros": 5000,
            "candidate_models": ["gpt-4o", "claude"], "batch_id": None}, actor, **ids)
        out: list[tuple[dict[str, Any], Any]] = [(placed, None)]
        roll = rng.random()
        if roll < 0.1:
            out.append((self._event("requests", stream, topic + "HoldVoided",
                                    {"reason": "provider_error", "attempts": []}, actor, **ids), None))
            return out
        charged = 0 if roll < 0.2 else rng.randrange(1, 10**6)
        settled = self._event("requests", stream, topic + "HoldSettled", {
            "provider": "openai", "served_model": "gpt-4o", "charged_micros": charged,
            "cost_micros": charged // 2, "uncollected_micros": 0,
            "attempts": [{"provider": "openai", "outcome": "ok", "status": 200,
                          "latency_ms": rng.randrange(5000)}],
            "tokens": {"input": rng.randrange(4000), "output": rng.randrange(900)},
            "client_disconnected": False, "labels": {"team": self._text("search, ml")}},
            actor, **ids)
        audit = ("request.settled", "request", {"charged_micros": charged}) if charged else None
        out.append((settled, audit))
        return out

    def _wallet(self) -> list[tuple[dict[str, Any], Any]]:
        stream, rng = self._uuid(), self.rng
        if rng.random() < 0.5:
            event = self._event("accounts", stream, "domain.wallet:Wallet.PurchaseCredited", {
                "payment_id": f"pay_{rng.randrange(10**9)}", "amount": rng.randrange(10**8),
                "amount_paid_cents": -rng.randrange(1, 100), "stripe_event_id": "evt_1"},
                {"kind": "stripe", "id": "stripe"})
            return [(event, ("wallet.purchase_credited", "wallet",
                             {"amount": event["state"]["amount"]}))]
        amount = rng.randrange(2**63)
        reason = self._text(CAFE_NFD + " \u2603 \U0001f600\ttab")
        event = self._event("accounts", stream, "domain.wallet:Wallet.AdminCreditGranted", {
            "amount": amount, "reason": reason}, {"kind": "staff", "id": "usr_owner"},
            command_id=f"cmd-{self.tick}", correlation_id=f"req-{self.tick}")
        return [(event, ("wallet.admin_credit_granted", "wallet",
                         {"amount": amount, "reason": reason}))]

    def _key(self) -> list[tuple[dict[str, Any], Any]]:
        stream = self._uuid()
        actor = {"kind": "user", "id": f"usr_{self.rng.randrange(1000)}"}
        event = self._event("access", stream, "domain.api_key:ApiKey.Issued", {
            "name": "ci", "scopes": ["chat"], "labels": {}, "expires_at": None,
            "rate_limits": {"rpm": 60}}, actor, command_id=f"cmd-{self.tick}")
        return [(event, ("key.issued", "key", {"after": {"name": "ci", "enabled": True}}))]


def make_bundle(entries: int, **options: Any) -> Bundle:
    """An in-memory bundle of exactly ``entries`` entries; events sorted as exported."""
    maker = Maker(**options)
    bundle = Bundle(manifest={})
    for kind, row in maker.run(entries):
        getattr(bundle, kind + "s" if kind != "entry" else "entries").append(row)
    bundle.events.sort(key=lambda e: (e["context"], e["position"]))
    bundle.manifest = dict(maker.manifest(), events=len(bundle.events),
                           checkpoints=len(bundle.checkpoints))
    bundle.public_keys = maker.public_keys()
    return bundle


def write_bundle(path: Path, entries: int, **options: Any) -> Path:
    """Stream a bundle of ``entries`` entries to ``path`` without holding it in memory."""
    maker = Maker(**options)
    path.mkdir(parents=True, exist_ok=True)
    parts: dict[str, Any] = {}
    counts = {"event": 0, "entry": 0, "checkpoint": 0}
    with (path / "entries.jsonl").open("w") as entries_file, \
            (path / "checkpoints.jsonl").open("w") as checkpoints_file:
        for kind, row in maker.run(entries):
            counts[kind] += 1
            if kind == "event":
                # events.jsonl is ordered by context, then position: one part per context.
                handle = parts.get(row["context"])
                if handle is None:
                    handle = parts[row["context"]] = (path / f".{row['context']}.part").open("w")
                handle.write(dumps(row) + "\n")
            else:
                (entries_file if kind == "entry" else checkpoints_file).write(dumps(row) + "\n")
    with (path / "events.jsonl").open("w") as events_file:
        for context in sorted(parts):
            parts[context].close()
            part = path / f".{context}.part"
            with part.open() as handle:
                for line in handle:
                    events_file.write(line)
            part.unlink()
    manifest = dict(maker.manifest(), events=counts["event"], checkpoints=counts["checkpoint"])
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2))
    (path / "public-keys.json").write_text(json.dumps(maker.public_keys(), indent=2))
    return path


# --- Tampering, as an attacker with write access to the database (not to the keys) would.
# Each returns the tampered copy and the first failure the verifier must report:
# (seq, check). The original bundle is never modified.

Expected = tuple[Bundle, int, str]


def copy_of(bundle: Bundle) -> Bundle:
    return Bundle(manifest=dict(bundle.manifest), events=list(bundle.events),
                  entries=list(bundle.entries), checkpoints=list(bundle.checkpoints),
                  public_keys=bundle.public_keys)


def checkpoint_seqs(bundle: Bundle) -> list[int]:
    return [c["checkpoint"]["seq"] for c in bundle.checkpoints]


def event_index(bundle: Bundle, seq: int) -> int:
    entry = bundle.entries[seq - 1]
    return next(i for i, e in enumerate(bundle.events)
                if (e["context"], e["position"]) == (entry["context"], entry["position"]))


def _flip_char(text: str, rng: random.Random, alphabet: str) -> str:
    i = rng.randrange(len(text))
    return text[:i] + rng.choice([c for c in alphabet if c != text[i]]) + text[i + 1:]


def flip_payload(bundle: Bundle, seq: int, rng: random.Random) -> Expected:
    """One changed character or digit somewhere in entry ``seq``, hashes left alone."""
    out = copy_of(bundle)
    entry = out.entries[seq - 1] = json.loads(json.dumps(bundle.entries[seq - 1]))
    field_name = rng.choice(["summary", "action", "target", "actor", "event_digest", "hash",
                             "prev_hash", "event_id"])
    if field_name in ("event_digest", "hash", "prev_hash", "event_id"):
        hexdigits = "0123456789abcdef"
        value = entry[field_name]
        while True:
            flipped = _flip_char(value, rng, hexdigits)
            if flipped.count("-") == value.count("-"):
                break
        entry[field_name] = flipped
    elif field_name == "action":
        entry["action"] = _flip_char(entry["action"], rng, "abcdefghijklmnopqrstuvwxyz")
    elif field_name in ("target", "actor"):
        entry[field_name]["id"] = _flip_char(entry[field_name]["id"], rng, "abcdefghijkl")
    else:
        key = rng.choice(sorted(entry["summary"]))
        value = entry["summary"][key]
        if type(value) is int:
            entry["summary"][key] = value ^ (1 << rng.randrange(8))
        elif type(value) is str:
            entry["summary"][key] = _flip_char(value, rng, "xyz")
        else:
            entry["summary"][key] = "flipped"
    return out, seq, "entry_hash"


def change_time(bundle: Bundle, seq: int, rng: random.Random) -> Expected:
    out = copy_of(bundle)
    entry = out.entries[seq - 1] = dict(bundle.entries[seq - 1])
    moment = datetime.strptime(entry["recorded_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    delta = timedelta(microseconds=rng.choice([-1, 1, 1000, 3_600_000_000]))
    entry["recorded_at"] = (moment + delta).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return out, seq, "entry_hash"


def delete_entry(bundle: Bundle, seq: int, rng: random.Random) -> Expected:
    assert seq < len(bundle.entries), "deleting the last entry is a truncation"
    out = copy_of(bundle)
    del out.entries[seq - 1]
    return out, seq, "chain_link"


def insert_copy(bundle: Bundle, seq: int, rng: random.Random) -> Expected:
    """A copy of another entry slipped in before entry ``seq``."""
    other = rng.choice([s for s in range(1, len(bundle.entries) + 1) if s != seq])
    out = copy_of(bundle)
    out.entries.insert(seq - 1, dict(bundle.entries[other - 1]))
    return out, seq, "chain_link"


def insert_forged(bundle: Bundle, seq: int, rng: random.Random) -> Expected:
    """A forged entry with a correct hash, for entry ``seq``'s event, put before it."""
    out = copy_of(bundle)
    forged = json.loads(json.dumps(bundle.entries[seq - 1]))
    forged["summary"] = {"forged": True}
    forged["hash"] = entry_hash(forged)
    out.entries.insert(seq - 1, forged)
    if seq in checkpoint_seqs(bundle):
        return out, seq, "checkpoint_link"
    return out, seq + 1, "chain_link"


def swap(bundle: Bundle, seq: int, rng: random.Random) -> Expected:
    """Entries ``seq`` and ``seq + 1`` trade places."""
    out = copy_of(bundle)
    out.entries[seq - 1], out.entries[seq] = out.entries[seq], out.entries[seq - 1]
    return out, seq, "chain_link"


def truncate(bundle: Bundle, seq: int, rng: random.Random) -> Expected:
    """Entries from ``seq`` on removed, with their events, so the rest is consistent.

    Only checkpoints can tell; when none is at or after ``seq`` nothing can.
    """
    out = copy_of(bundle)
    out.entries = bundle.entries[:seq - 1]
    last: dict[str, int] = {}
    for entry in out.entries:
        last[entry["context"]] = entry["position"]
    out.events = [e for e in bundle.events if e["position"] <= last.get(e["context"], 0)]
    return out, seq, "checkpoint_extends"


def rewrite_tail(bundle: Bundle, seq: int, rng: random.Random) -> Expected:
    """Summaries from entry ``seq`` on rewritten and every hash recomputed."""
    out = copy_of(bundle)
    for i in range(seq - 1, len(out.entries)):
        out.entries[i] = json.loads(json.dumps(out.entries[i]))
        out.entries[i]["summary"]["rewritten"] = True
    rehash(out.entries, seq - 1)
    covering = [c for c in checkpoint_seqs(bundle) if c >= seq]
    return out, (covering[0] if covering else 0), "checkpoint_link"


def edit_event(bundle: Bundle, seq: int, rng: random.Random) -> Expected:
    """The stored state of entry ``seq``'s event changed."""
    out = copy_of(bundle)
    i = event_index(bundle, seq)
    event = out.events[i] = json.loads(json.dumps(bundle.events[i]))
    state = event["state"]
    numbers = [k for k, v in state.items() if type(v) is int]
    choice = rng.randrange(3)
    if choice == 0 and numbers:
        key = rng.choice(numbers)
        state[key] += 1
    elif choice == 1:
        moment = datetime.fromisoformat(state["timestamp"]) + timedelta(microseconds=1)
        state["timestamp"] = moment.isoformat()
    else:
        state["injected"] = "value"
    return out, seq, "event_match"


def delete_event(bundle: Bundle, seq: int, rng: random.Random) -> Expected:
    out = copy_of(bundle)
    del out.events[event_index(bundle, seq)]
    return out, seq, "event_match"


def wrong_key(bundle: Bundle, index: int, rng: random.Random) -> Expected:
    """Checkpoint ``index`` (0-based) re-signed by a key the auditor does not know."""
    out = copy_of(bundle)
    body = bundle.checkpoints[index]["checkpoint"]
    out.checkpoints[index] = sign(body, signing_key(f"intruder-{rng.random()}"))
    return out, body["seq"], "checkpoint_signature"
