"""How long verifying an audit bundle of 1,000,000 entries takes on one core (target <= 60 s).

Usage: python bench/audit_verify.py [--entries N] [--dir DIR] [--exotic SHARE]

Generates a realistic bundle once (events with about 1.8 per entry, a checkpoint every
1,000 entries, canonical lines as the exporter writes them; ``--exotic`` is the share of
values with non-ASCII text, escapes or spaces, which take the slower encoding path), keeps
it in DIR for later runs, then pins itself to one core and times ``verify_bundle``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from audit.bundle_maker import write_bundle  # noqa: E402

from entrypoints.audit_verifier import verify_bundle  # noqa: E402

TARGET_SECONDS = 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--exotic", type=float, default=0.01)
    parser.add_argument("--dir", type=Path, default=None,
                        help="where to keep the generated bundle (default: the temp dir)")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.gettempdir()) / (
        f"gatewayz-audit-bench-{args.entries}-{args.exotic}")
    manifest = folder / "manifest.json"
    if not manifest.is_file() or json.loads(manifest.read_text())["entries"] != args.entries:
        print(f"generating {args.entries:,} entries in {folder} ...", flush=True)
        started = time.perf_counter()
        write_bundle(folder, args.entries, checkpoint_every=1000, exotic=args.exotic)
        print(f"  generated in {time.perf_counter() - started:.1f} s", flush=True)
    if hasattr(os, "sched_setaffinity"):
        # One core, as the target is stated; the verifier is single-threaded anyway.
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    wall, cpu = time.perf_counter(), time.process_time()
    report = verify_bundle(folder)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"verified {report.entries:,} entries, {report.events:,} events, "
          f"{report.checkpoints:,} checkpoints: exit {report.exit_code}")
    print(f"wall {wall:.1f} s, cpu {cpu:.1f} s on one core "
          f"({report.entries / cpu:,.0f} entries/s of cpu); target <= {TARGET_SECONDS:.0f} s "
          f"for 1,000,000 -> {'met' if cpu * 1_000_000 / max(report.entries, 1) <= TARGET_SECONDS else 'MISSED'}"
          " (cpu time, scaled)")
    return 0 if report.exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
