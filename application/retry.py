"""Optimistic-concurrency retry: reload and re-run a command on a stream version conflict."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from eventsourcing.persistence import IntegrityError

from domain.errors import DomainError

T = TypeVar("T")
ATTEMPTS = 20


def with_retry(command: Callable[[], T]) -> T:
    """Run ``command`` (which loads, decides and saves) until it saves without conflict."""
    for attempt in range(ATTEMPTS):
        try:
            return command()
        except IntegrityError:
            time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
    raise DomainError("conflict", "too many concurrent changes to the same object; retry")
