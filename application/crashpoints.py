"""Named crash points for fault-injection tests: kill -9 the process at one step of a request.

``GATEWAYZ_CRASH_AT=<step>`` makes the process SIGKILL itself the first time it reaches that
step. Unset (always, in production), ``crash_point`` is one dict lookup.
Steps, in the order a request reaches them: before_hold_commit, after_hold_commit,
mid_stream, after_answer, after_settle_commit, after_projection.
"""

from __future__ import annotations

import os
import signal

STEPS = ("before_hold_commit", "after_hold_commit", "mid_stream", "after_answer",
         "after_settle_commit", "after_projection")
_TARGET = os.environ.get("GATEWAYZ_CRASH_AT", "")


def armed(step: str) -> bool:
    """Whether this process is set to crash at ``step`` (so a hook costs nothing otherwise)."""
    return step == _TARGET


def crash_point(step: str) -> None:
    if step == _TARGET:
        os.kill(os.getpid(), signal.SIGKILL)
