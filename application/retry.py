"""Optimistic-concurrency retry: reload and re-run a command on a stream version conflict."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from eventsourcing.persistence import IntegrityError

from domain.errors import DomainError

T = TypeVar("T")
RETRIES = 20  # spec 11.1: "retry up to 20 times", so one first try plus 20 retries
ATTEMPTS = RETRIES + 1
BASE_S = 0.005
CAP_S = 0.5


def backoff(retry: int) -> float:
    """Seconds to sleep before retry number ``retry`` (0-based): exponential, full jitter.

    Full jitter spreads writers that conflicted together over the whole window, so they do
    not collide again in lock-step. Measured, 64 writers granting to one wallet on
    PostgreSQL with a 3-connection pool: 29-31 of 64 answered 409 with the former linear
    2 ms steps, 0 with these (5 ms doubling, capped at 0.5 s). The cap bounds a 409 to
    about 7.1 s in the worst case (3.6 s expected) of 20 straight conflicts."""
    return random.uniform(0, min(CAP_S, BASE_S * 2 ** retry))


def with_retry(command: Callable[[], T]) -> T:
    """Run ``command`` (which loads, decides and saves) until it saves without conflict.

    ``command`` must reload what it decides on each time: a conflict means another writer
    appended to one of its streams since it loaded them."""
    for retry in range(ATTEMPTS):
        try:
            return command()
        except IntegrityError:
            if retry == RETRIES:
                break
            time.sleep(backoff(retry))
    raise DomainError("conflict", "too many concurrent changes to the same object; retry")
