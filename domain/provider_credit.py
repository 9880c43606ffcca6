"""Provider credit levels (spec 3.6): the operator's remaining balance at a provider, mapped to
`info` / `warning` / `critical` by per-provider thresholds, and one stream per provider that
records each threshold crossing once.

Pure: the balance is read elsewhere (application/credit_watch.py). Money is kept in integer
micro-USD, as the ledger keeps it, so comparisons are exact and never depend on a float.
A balance exactly on a threshold is at that level ("warning <= $100": $100.00 is warning).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, InvalidOperation, localcontext
from typing import Any

from eventsourcing.domain import Aggregate, event

from domain.ids import stream_uuid

MICROS_PER_USD = 1_000_000
MAX_USD = 10**9  # a balance or threshold beyond this is not a reading we believe
MAX_MICROS = MAX_USD * MICROS_PER_USD
# Ordered from healthy to worst; None means "above every threshold" (or never read).
LEVELS: tuple[str | None, ...] = (None, "info", "warning", "critical")
_THRESHOLD_KEYS = ("info", "warning", "critical")
_MICRO = Decimal("0.000001")


class CreditConfigError(ValueError):
    """Thresholds that break a rule; the message names the provider and the field."""


def usd_to_micros(usd: Decimal | int) -> int:
    """USD -> micro-USD, rounded down: a balance reads as at most what is left, so a rounding
    can only raise the level (alert early), never hide a crossing. Bounded to +/- MAX_USD."""
    if isinstance(usd, bool) or not isinstance(usd, int | Decimal):
        raise ValueError("a balance must be an int or a Decimal")
    value = Decimal(usd)
    if not value.is_finite() or abs(value) > MAX_USD:
        raise ValueError(f"balance outside +/-{MAX_USD} USD")
    with localcontext() as ctx:
        # quantize rounds the exact input once; 10^9 USD in micros is 16 digits, in range.
        ctx.prec = 40
        return int(value.quantize(_MICRO, rounding=ROUND_FLOOR).scaleb(6))


def format_usd(micros: int) -> str:
    """Micro-USD as a plain decimal string without trailing zeros: 80_500_000 -> "80.5"."""
    text = format(Decimal(micros).scaleb(-6).normalize(), "f")
    return "0" if text in ("0", "-0") else text


@dataclass(frozen=True)
class Thresholds:
    """Inclusive upper bounds of each level, in micro-USD (defaults are the spec's)."""

    info_micros: int = 500 * MICROS_PER_USD
    warning_micros: int = 100 * MICROS_PER_USD
    critical_micros: int = 20 * MICROS_PER_USD

    def __post_init__(self) -> None:
        values = (self.info_micros, self.warning_micros, self.critical_micros)
        if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_MICROS
                   for v in values):
            raise CreditConfigError(f"thresholds must be integers 0..{MAX_MICROS} micro-USD")
        # Otherwise a level could never be reached, or a lower balance read as healthier.
        if not self.info_micros >= self.warning_micros >= self.critical_micros:
            raise CreditConfigError("thresholds must satisfy info >= warning >= critical")

    def level(self, balance_micros: int) -> str | None:
        if balance_micros <= self.critical_micros:
            return "critical"
        if balance_micros <= self.warning_micros:
            return "warning"
        if balance_micros <= self.info_micros:
            return "info"
        return None

    def as_json(self) -> dict[str, str]:
        return {"info_usd": format_usd(self.info_micros),
                "warning_usd": format_usd(self.warning_micros),
                "critical_usd": format_usd(self.critical_micros)}


DEFAULT_THRESHOLDS = Thresholds()


def _usd(value: Any, where: str) -> int:
    # Strings or integers only: a JSON float (0.1) is already inexact when it arrives.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise CreditConfigError(f"{where}: a USD amount as a decimal string or an integer")
    try:
        amount = Decimal(value) if isinstance(value, int) or len(value) <= 40 else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or not 0 <= amount <= MAX_USD:
        raise CreditConfigError(f"{where}: a USD amount 0..{MAX_USD}")
    return usd_to_micros(amount)


def thresholds_of(raw: Mapping[str, Mapping[str, Any]]) -> dict[str, Thresholds]:
    """Per-provider thresholds from config, e.g. ``{"openrouter": {"warning": "250"}}``, in
    USD; a level left out keeps its default. Broken config raises (it fails the start)."""
    if not isinstance(raw, Mapping):
        raise CreditConfigError("credit thresholds: an object of provider -> thresholds")
    out: dict[str, Thresholds] = {}
    for slug, levels in raw.items():
        if not isinstance(slug, str) or not isinstance(levels, Mapping) or \
                not set(levels) <= set(_THRESHOLD_KEYS):
            raise CreditConfigError(f"credit thresholds: {slug!r} needs an object with "
                                    f"keys among {_THRESHOLD_KEYS}")
        micros = {k: _usd(v, f"credit thresholds: {slug}.{k}") for k, v in levels.items()}
        try:
            out[slug] = Thresholds(
                micros.get("info", DEFAULT_THRESHOLDS.info_micros),
                micros.get("warning", DEFAULT_THRESHOLDS.warning_micros),
                micros.get("critical", DEFAULT_THRESHOLDS.critical_micros))
        except CreditConfigError as exc:
            raise CreditConfigError(f"credit thresholds: {slug}: {exc}") from None
    return out


def is_worse(level: str | None, than: str | None) -> bool:
    return LEVELS.index(level) > LEVELS.index(than)


class ProviderCredit(Aggregate):
    """One stream per provider. Its state is the level last recorded, so a crossing is
    recorded once however many workers read the same balance: each loads the stream, and
    the one that finds the level already there records nothing (3.6 "once per crossing")."""

    class Tracked(Aggregate.Created):
        provider: str

    class LevelChanged(Aggregate.Event):
        provider: str
        level: str | None  # the new level; None: back above every threshold
        previous: str | None
        balance_micros: int  # the reading that crossed
        actor: str  # "system" for the scheduled read

    @staticmethod
    def create_id(provider: str, **_: object):
        return stream_uuid(f"provider-credit:{provider}")

    @event(Tracked)
    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.level: str | None = None  # a stream starts healthy: nothing crossed yet
        self.balance_micros: int | None = None

    @event(LevelChanged)
    def _changed(self, provider: str, level: str | None, previous: str | None,
                 balance_micros: int, actor: str) -> None:
        self.level = level
        self.balance_micros = balance_micros

    def observe(self, level: str | None, balance_micros: int, actor: str = "system") -> bool:
        """Record a crossing when ``level`` differs from the recorded one; True if it did."""
        if level not in LEVELS:
            raise ValueError(f"unknown credit level {level!r}")
        if not isinstance(balance_micros, int) or isinstance(balance_micros, bool) or \
                abs(balance_micros) > MAX_MICROS:
            raise ValueError("balance_micros must be an integer within +/-10^9 USD")
        if level == self.level:
            return False
        self._changed(self.provider, level, self.level, balance_micros, actor)
        return True
