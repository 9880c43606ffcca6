"""Records security events (11.3) for the HTTP layer, off the request path and never failing it.

Failed authentications, misused keys and wrong-credential calls are counted per (who, reason)
and UTC minute: the first is written at once with count 1, the rest as ONE more event with
their count once the minute ended (a pass every FLUSH_INTERVAL_S; the rest on close): 100 bad
keys from one IP in a minute make at most 2 events. A staff call refused for lack of
permission comes from an authenticated person: one event per call. The request path only
touches a dict under a lock and a bounded queue; encryption, lookups and saves happen in one
writer thread, where a failure is logged, never raised: a 401 must not become a 500.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from application import envelope
from application.envelope import Envelope
from application.ports import Clock, PersonalDataCipher
from application.principals import KeyRecord, StaffPrincipal
from domain.key_format import credential_kind, display_prefix, secret_hash
from domain.security import Security, Tally, window_start

log = logging.getLogger("gatewayz.security")

# Memory bound per minute; past it callers share one bucket per reason with IP (or key)
# "other": a spray from many addresses is still counted, no longer told apart.
MAX_BUCKETS_PER_MINUTE = 10_000
OTHER = "other"
QUEUE_LIMIT = 10_000
FLUSH_INTERVAL_S = 2.0
_WAKE = object()  # queued by close(): the writer thread stops without waiting for a tick

_AUTH_REASONS = {"missing_api_key": "missing", "api_key_revoked": "revoked",
                 "api_key_expired": "expired"}
_KEY_MISUSE_CODES = ("api_key_revoked", "api_key_expired")


@dataclass(frozen=True)
class Origin:
    """Where a call came from and what it asked for: route template and client address."""

    route: str
    client_ip: str | None


@dataclass
class _Job:
    event_class: type
    fields: dict[str, Any]
    envelope: Envelope


def _never_raises(method: Callable) -> Callable:
    @functools.wraps(method)
    def guarded(self: SecurityRecorder, *args: Any, **kwargs: Any) -> None:
        try:
            method(self, *args, **kwargs)
        except Exception:
            self.failures += 1
            log.exception("could not note a security event; the request goes on")

    return guarded


class SecurityRecorder:
    def __init__(self, app: Any, cipher: PersonalDataCipher, clock: Clock, pepper: bytes,
                 key_lookup: Callable[[str], KeyRecord | None],
                 max_buckets: int = MAX_BUCKETS_PER_MINUTE, queue_limit: int = QUEUE_LIMIT,
                 flush_interval: float = FLUSH_INTERVAL_S) -> None:
        self.app = app
        self.cipher = cipher
        self.clock = clock
        self.pepper = pepper
        self.key_lookup = key_lookup
        self.max_buckets = max_buckets
        self.flush_interval = flush_interval
        self._buckets: dict[int, dict[tuple, Tally]] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[_Job] = queue.Queue(maxsize=queue_limit)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.recorded = self.failures = self.dropped = 0  # written, failed, no room

    # -- the request path ----------------------------------------------------------------
    @_never_raises
    def refused(self, code: str, presented: str | None, permission: str,
                origin: Origin) -> None:
        """A credential was refused with ``code`` (a DomainError code of 1.2/1.5)."""
        kind = credential_kind(presented) if presented else None
        prefix = display_prefix(presented) if kind and presented else None
        ip = origin.client_ip or "unknown"
        if code == "wrong_credential_type" and kind:
            # Not authenticated, so counted per IP like a failed authentication.
            principal, credential = ("staff", "staff_token") if kind == "staff" \
                else ("api_key", "api_key")
            self._count(Security.AccessDenied, ("denied", ip, credential), {
                "reason": code, "principal_kind": principal, "principal_id": None,
                "credential_kind": credential, "key_prefix": prefix, "route": origin.route,
                "permission": permission, "_ip": ip})
            return
        reason = _AUTH_REASONS.get(code)
        if code == "invalid_api_key":
            reason = "unknown" if kind else "malformed"
        if reason is None:
            return  # not a refused credential (e.g. ambiguous headers): nothing to record
        self._count(Security.AuthenticationFailed, ("auth", ip, reason),
                    {"reason": reason, "key_prefix": prefix, "route": origin.route, "_ip": ip})
        if code in _KEY_MISUSE_CODES and kind in ("live", "test") and presented:
            # Only the HMAC travels on, to find the key in the writer thread; the secret
            # itself is dropped here.
            digest = secret_hash(self.pepper, presented)
            self._count(Security.KeyMisuse, ("misuse", digest, code),
                        {"route": origin.route, "_digest": digest, "_code": code})

    @_never_raises
    def key_misused(self, key: KeyRecord, kind: str, origin: Origin) -> None:
        """An authenticated key asked for something it may not have (scope, model)."""
        self._count(Security.KeyMisuse, ("misuse", key.key_id, kind),
                    {"key_id": key.key_id, "account_id": key.account_id, "kind": kind,
                     "route": origin.route})

    @_never_raises
    def access_denied(self, principal: StaffPrincipal, permission: str,
                      origin: Origin) -> None:
        """A staff token lacking the route's permission: one event per call (1.4)."""
        self._enqueue(_Job(Security.AccessDenied, {
            "reason": "missing_permission", "principal_kind": "staff",
            "principal_id": principal.user_id, "credential_kind": "staff_token",
            "key_prefix": None, "route": origin.route, "permission": permission,
            "_ip": origin.client_ip or "unknown", "count": 1,
            "window_start": window_start(self._minute())}, envelope.current()))

    @_never_raises
    def webhook_rejected(self, source: str, reason: str) -> None:
        # For inbound webhooks (Stripe) once they exist; nothing calls this yet.
        self._enqueue(_Job(Security.WebhookSignatureRejected,
                           {"source": source, "reason": reason}, envelope.current()))

    def _count(self, event_class: type, identity: tuple, fields: dict[str, Any]) -> None:
        minute = self._minute()
        with self._lock:
            buckets = self._buckets.setdefault(minute, {})
            bucket = buckets.get(identity)
            if bucket is None and len(buckets) >= self.max_buckets:
                identity, fields = _overflow(identity, fields)
                bucket = buckets.get(identity)
            if bucket is not None:
                bucket.add(fields)
                return
            current = envelope.current()
            bucket = buckets[identity] = Tally(event_class, dict(fields), current.actor)
            first = _Job(event_class, {**fields, "count": 1,
                                       "window_start": window_start(minute)}, current)
            if not self._enqueue(first, count_drop=False):
                bucket.pending += 1  # queue full: it goes out with the minute's count

    def _enqueue(self, job: _Job, count_drop: bool = True) -> bool:
        try:
            self._queue.put_nowait(job)
            return True
        except queue.Full:  # bounded memory: a single uncounted event is dropped and counted
            self.dropped += count_drop
            return False

    def _minute(self) -> int:
        return int(self.clock.now().timestamp()) // 60

    # -- the writer thread ---------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="security-events",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        next_flush = time.monotonic() + self.flush_interval
        while not self._stop.is_set():
            try:
                job = self._queue.get(timeout=max(0.0, next_flush - time.monotonic()))
            except queue.Empty:
                job = None
            if job is _WAKE:
                self._queue.task_done()
            elif job is not None:
                self._write(job)
                self._queue.task_done()
            if time.monotonic() >= next_flush:
                try:
                    self.flush()
                except Exception:  # the thread must outlive any one bad pass
                    log.exception("security event flush failed; retrying next pass")
                next_flush = time.monotonic() + self.flush_interval

    def flush(self, everything: bool = False) -> int:
        """Write the counted rest of every ended minute (of every minute: ``everything``)."""
        current = self._minute()
        with self._lock:
            ended = sorted(m for m in self._buckets if everything or m < current)
            taken = [(m, self._buckets.pop(m)) for m in ended]
        written = 0
        for minute, buckets in taken:
            for bucket in buckets.values():
                if bucket.pending:
                    self._write(_Job(bucket.event_class, {
                        **bucket.fields, "count": bucket.pending,
                        "window_start": window_start(minute)}, Envelope(bucket.actor)))
                    written += 1
        return written

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Whether every queued event was written (or given up on) within ``timeout``."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Full):  # full: the thread is busy and sees _stop
            self._queue.put_nowait(_WAKE)  # end the thread's wait now, not at its tick
        if self._thread is not None:
            self._thread.join(timeout=5)
        while True:  # what the thread did not get to, then every open minute
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not _WAKE:
                self._write(job)
            self._queue.task_done()
        self.flush(everything=True)

    def _write(self, job: _Job) -> None:
        try:
            fields = self._materialise(job.fields)
            if fields is None:
                return
            with envelope.acting(job.envelope):
                self.app.save(Security.record(job.event_class, **fields))
            self.recorded += 1
        except Exception as error:
            self.failures += 1
            log.warning("could not record a %s security event: %s",
                        job.event_class.__qualname__, error)

    def _materialise(self, fields: dict[str, Any]) -> dict[str, Any] | None:
        """The stored fields: the IP encrypted, a key found from the secret's HMAC."""
        out = {k: v for k, v in fields.items() if not k.startswith("_")}
        if "_ip" in fields:
            out["client_ip_enc"] = self.cipher.encrypt(fields["_ip"])
        if "_code" in fields:
            out["kind"] = ("expired_key_used" if fields["_code"] == "api_key_expired"
                           else "revoked_key_used")
            if "_digest" in fields:
                record = self.key_lookup(fields["_digest"])
                if record is None:
                    return None  # gone since (a later rotation ended the secret): no key
                out["key_id"], out["account_id"] = record.key_id, record.account_id
                if out["kind"] == "revoked_key_used" and record.status != "revoked":
                    # Refused as revoked while the key itself is active: an old secret
                    # past its rotation grace period (1.3).
                    out["kind"] = "rotated_key_used"
        return out


def _overflow(identity: tuple, fields: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
    fields = dict(fields)
    if "_ip" in fields:
        fields["_ip"] = OTHER
    if identity[0] == "misuse":
        fields.pop("_digest", None)
        fields.update(key_id=OTHER, account_id=None)
    return (identity[0], OTHER, *identity[2:]), fields


# -- misuse found deep inside a use case ------------------------------------------------------
# Model allowlists are checked in resolve, far from the HTTP request; like the envelope, the
# recorder and the route travel with the request's context instead of through every call.
_bound: ContextVar[tuple[SecurityRecorder, Origin] | None] = ContextVar("gatewayz_security")


def bind(recorder: SecurityRecorder, origin: Origin) -> None:
    """Called by the HTTP layer once a key is authenticated, in the request's own task."""
    _bound.set((recorder, origin))


def report_misuse(key: KeyRecord, kind: str) -> None:
    """Record a key's misuse if a request is being served; a no-op otherwise (jobs, tests)."""
    bound = _bound.get(None)
    if bound is not None:
        bound[0].key_misused(key, kind, bound[1])
