"""Tamper proof on a real store: every random single tamper of an exported bundle is caught.

Usage: python bench/tamper_proof.py [--accounts N] [--tampers N] [--seed S] [--backend B]

Builds a store of >= 10,000 events through the real applications and projector (accounts,
admin grants, purchases, paid/free/failed inference requests, each saved with the envelope
of the caller that would have saved it), exports the audit bundle with the real exporter,
checks the untouched bundle verifies, then applies independent random single tampers, each
to a fresh in-memory copy, and checks ``verify_records`` names the first bad seq.

Event tampers aim at audited events (or move them): holds placed, voided or expired and
free settlements have no entry by design (11.6), so the chain cannot see changes to them
alone; the append-only triggers of the events tables are what protects those.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from audit import bundle_maker as bm  # noqa: E402

from application.envelope import Actor, Envelope, acting  # noqa: E402
from domain.account import Account  # noqa: E402
from domain.grant_log import GrantLog  # noqa: E402
from domain.inference_request import InferenceRequest  # noqa: E402
from domain.wallet import Wallet  # noqa: E402
from entrypoints.bootstrap import Gateway, Settings  # noqa: E402
from projections.audit_export import export_bundle  # noqa: E402

ADMINS = [f"usr_admin_{i}" for i in range(8)]


def open_store(data_dir: Path, backend: str = "memory") -> Gateway:
    """A gateway whose projector runs only when asked (``run_until_idle``)."""
    return Gateway(Settings(data_dir=data_dir, memory_events=backend == "memory",
                            key_pepper=b"tamper-proof-pepper-of-32-bytes!!", run_projector=False,
                            master_key=bytes(range(32))))


def _save(app, aggregates, actor: Actor, correlation: str, command: str | None = None) -> None:
    with acting(Envelope(actor, correlation_id=correlation, command_id=command)):
        app.save(*aggregates)


def build_store(gw: Gateway, accounts: int, requests_per_account: int, seed: int = 0) -> int:
    """Fill the store; returns how many events it holds. Per account: 3 opening events, 2
    admin grants (wallet + grant log), 1 purchase, ``requests_per_account`` requests of 2
    events (80% paid, 10% free, 10% failed at the provider)."""
    rng = random.Random(seed)
    apps, owner = gw.stores, Actor("staff", "usr_owner")
    ids = [f"acct_tp{seed}_{i:05d}" for i in range(accounts)]
    for account_id in ids:
        email = gw.data_keys.encrypt(f"{account_id}@example.com", account_id)
        wallet = Wallet(account_id=account_id)
        wallet.grant_trial(5_000_000, "2027-01-01T00:00:00+00:00")
        _save(apps.accounts, [Account(account_id=account_id, origin="admin", plan="trial",
                                      email_enc=email, email_domain_hash="0" * 64,
                                      actor="staff:usr_owner"), wallet],
              owner, f"req_{uuid.uuid4().hex[:26]}", uuid.uuid4().hex)
    logs = {admin: GrantLog(staff_user_id=admin) for admin in ADMINS}
    for _ in range(2):
        for account_id in ids:
            admin = rng.choice(ADMINS)
            wallet = apps.accounts.repository.get(Wallet.create_id(account_id))
            amount = rng.randrange(1, 20) * 100_000
            command = uuid.uuid4().hex
            wallet.grant(amount, "goodwill credit, batch build", f"staff:{admin}", command)
            logs[admin].record(account_id, amount, gw.clock.now())
            _save(apps.accounts, [wallet, logs[admin]], Actor("staff", admin),
                  f"req_{uuid.uuid4().hex[:26]}", command)
    for account_id in ids:
        wallet = apps.accounts.repository.get(Wallet.create_id(account_id))
        cents = rng.randrange(500, 5000)
        wallet.credit_purchase(f"pi_{uuid.uuid4().hex[:20]}", cents, cents * 10_000, "starter",
                               "stripe")
        _save(apps.accounts, [wallet], Actor("stripe", "stripe"), f"evt_{uuid.uuid4().hex}")
    for _ in range(requests_per_account):
        for account_id in ids:  # one save each: one envelope (key, request id) per request
            request = _request(account_id, rng)
            _save(apps.requests, [request], Actor("api_key", f"key_{account_id[-5:]}",
                                                  "gw_live_ab12"), request.request_id)
    gw.projector.run_until_idle()
    return sum(gw.stores.max_positions().values())


def _request(account_id: str, rng: random.Random) -> InferenceRequest:
    hold = rng.randrange(1_000, 50_000)
    request = InferenceRequest(
        request_id=f"req_{uuid.uuid4().hex[:26]}", account_id=account_id, key_id="key_tp",
        endpoint="chat.completions", requested_model="acme/chat-1",
        candidate_models=["acme/chat-1"], price_snapshot={"fakeup": {"input": "1"}},
        estimated_input_tokens=10, output_limit=100, hold_micros=hold,
        reserved_by_pool={"purchased": hold}, stream=False, worker_id="w1")
    roll = rng.random()
    if roll < 0.1:
        request.void("provider_error", [{"provider": "fakeup", "outcome": "http_error",
                                         "status": 500, "latency_ms": 3}], "upstream 500")
        return request
    charge = 0 if roll < 0.2 else rng.randrange(1, hold)
    request.settle(provider="fakeup", served_model="acme/chat-1",
                   attempts=[{"provider": "fakeup", "outcome": "ok", "status": 200,
                              "latency_ms": rng.randrange(900)}],
                   tokens={"input": rng.randrange(4000), "output": rng.randrange(900)},
                   token_source="provider", cost_micros=charge,
                   charged_by_pool={"purchased": charge} if charge else {},
                   finish_reason="stop", ttfb_ms=5, duration_ms=40, client_disconnected=False)
    return request


def export(gw: Gateway, folder: Path) -> bm.Bundle:
    """Checkpoint the head, export with the real exporter, and read the bundle back."""
    gw.audit.ensure_key()  # first: creating the key is itself an audited event
    gw.projector.run_until_idle()
    gw.audit.shutdown()  # the head checkpointed and every noted checkpoint signed
    export_bundle(gw.stores, gw.db, gw.clock, folder)

    def lines(name: str) -> list:
        with (folder / name).open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle]

    return bm.Bundle(manifest=json.loads((folder / "manifest.json").read_text()),
                     events=lines("events.jsonl"), entries=lines("entries.jsonl"),
                     checkpoints=lines("checkpoints.jsonl"),
                     public_keys=json.loads((folder / "public-keys.json").read_text()))


# -- tampers the bundle maker has no helper for: reorderings and insertions of events, and
# a far swap of entries. Each returns (tampered copy, first bad seq, check).
def _first_entry_from(bundle: bm.Bundle, context: str, position: int) -> int:
    """The seq of the first entry of ``context`` at or after ``position``, else the seq the
    next entry would have (an audited event after every entry is reported at the end)."""
    return next((e["seq"] for e in bundle.entries
                 if e["context"] == context and e["position"] >= position),
                len(bundle.entries) + 1)


def swap_far(bundle: bm.Bundle, seq: int, rng: random.Random) -> bm.Expected:
    other = rng.randrange(seq + 2, len(bundle.entries) + 1)
    out = bm.copy_of(bundle)
    out.entries[seq - 1], out.entries[other - 1] = out.entries[other - 1], out.entries[seq - 1]
    return out, seq, "chain_link"


def reorder_events(bundle: bm.Bundle, seq: int, rng: random.Random) -> bm.Expected:
    """Entry ``seq``'s event and a neighbour (within 5 positions) trade positions."""
    out = bm.copy_of(bundle)
    i = bm.event_index(bundle, seq)
    context = bundle.events[i]["context"]
    near = [j for j in range(max(i - 5, 0), min(i + 6, len(bundle.events)))
            if j != i and bundle.events[j]["context"] == context]
    j = rng.choice(near)
    a, b = dict(bundle.events[i]), dict(bundle.events[j])
    a["position"], b["position"] = b["position"], a["position"]
    out.events[i], out.events[j] = a, b
    low = min(a["position"], b["position"])
    return out, _first_entry_from(bundle, context, low), "event_match"


def insert_event(bundle: bm.Bundle, seq: int, rng: random.Random) -> bm.Expected:
    """A forged event (a copy of any event of the context, as a new stream) slipped in at
    entry ``seq``'s position; the later events of that context move up by one."""
    out = bm.copy_of(bundle)
    at = bundle.events[bm.event_index(bundle, seq)]
    context, position = at["context"], at["position"]
    forged = json.loads(json.dumps(rng.choice(
        [e for e in bundle.events if e["context"] == context])))
    forged.update(position=position, stream_id=str(uuid.UUID(int=rng.getrandbits(128))),
                  version=1)
    out.events = [dict(e, position=e["position"] + 1)
                  if e["context"] == context and e["position"] >= position else e
                  for e in bundle.events] + [forged]
    return out, _first_entry_from(bundle, context, position), "event_match"


def _any_seq(bundle: bm.Bundle, rng: random.Random) -> int:
    return rng.randrange(1, len(bundle.entries) + 1)


def _not_last(bundle: bm.Bundle, rng: random.Random) -> int:
    return rng.randrange(1, len(bundle.entries))


# (name, tamper, how its seq argument is drawn). Checkpoint tampers take an index instead.
KINDS = [
    ("flip_payload", bm.flip_payload, _any_seq), ("change_time", bm.change_time, _any_seq),
    ("delete_entry", bm.delete_entry, _not_last), ("insert_copy", bm.insert_copy, _any_seq),
    ("insert_forged", bm.insert_forged, _any_seq), ("swap_adjacent", bm.swap, _not_last),
    ("swap_far", swap_far, lambda b, r: r.randrange(1, len(b.entries) - 1)),
    ("truncate", bm.truncate, _any_seq), ("rewrite_tail", bm.rewrite_tail, _any_seq),
    ("edit_event", bm.edit_event, _any_seq), ("delete_event", bm.delete_event, _any_seq),
    ("insert_event", insert_event, _any_seq), ("reorder_events", reorder_events, _any_seq),
    ("wrong_key", bm.wrong_key, lambda b, r: r.randrange(len(b.checkpoints))),
]


def run_tampers(bundle: bm.Bundle, count: int, seed: int = 0) -> dict:
    """``count`` independent single tampers, kinds in turn; what the verifier said of each."""
    detected, named, by_kind, misses, seconds = 0, 0, Counter(), [], 0.0
    for n in range(count):
        name, tamper, draw = KINDS[n % len(KINDS)]
        rng = random.Random(seed * 1_000_003 + n)
        tampered, seq, check = tamper(bundle, draw(bundle, rng), rng)
        started = time.perf_counter()
        report = tampered.verify()
        seconds += time.perf_counter() - started
        failure = report.first_failure
        by_kind[name] += 1
        if report.exit_code == 1 and failure is not None and failure.seq == seq:
            detected += 1
            named += failure.check == check
        else:
            misses.append({"kind": name, "expected": [seq, check], "exit": report.exit_code,
                           "got": [failure.seq, failure.check] if failure else None,
                           "error": report.error})
    return {"detected": detected, "check_named": named, "total": count,
            "kinds": dict(by_kind), "misses": misses, "verify_seconds": seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=250)
    parser.add_argument("--requests", type=int, default=18, help="requests per account")
    parser.add_argument("--tampers", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", choices=("memory", "sqlite"), default="memory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gatewayz-tamper-") as scratch:
        gw = open_store(Path(scratch) / "data", args.backend)
        try:
            started = time.perf_counter()
            events = build_store(gw, args.accounts, args.requests, args.seed)
            bundle = export(gw, Path(scratch) / "bundle")
            built = time.perf_counter() - started
        finally:
            gw.close()
    clean = bundle.verify()
    print(f"store: {events} events, {len(bundle.entries)} entries, "
          f"{len(bundle.checkpoints)} checkpoints ({args.backend}, built and exported in "
          f"{built:.1f} s); untouched bundle valid={clean.valid} warnings={clean.warnings}")
    if not clean.valid or (events < 10_000 and args.accounts >= 250):
        print("the untouched bundle must verify, over at least 10,000 events")
        return 1
    started = time.perf_counter()
    result = run_tampers(bundle, args.tampers, args.seed)
    wall = time.perf_counter() - started
    print(f"detected {result['detected']}/{result['total']} (first bad seq named) in "
          f"{wall:.1f} s; verifying took {result['verify_seconds']:.1f} s, "
          f"{1000 * result['verify_seconds'] / result['total']:.1f} ms per tamper; "
          f"expected check named in {result['check_named']}/{result['total']}")
    print("kinds: " + ", ".join(f"{k} {v}" for k, v in result["kinds"].items()))
    for miss in result["misses"][:20]:
        print("MISSED", miss)
    return 0 if result["detected"] == result["total"] else 1


if __name__ == "__main__":
    sys.exit(main())
