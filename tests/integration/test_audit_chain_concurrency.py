"""One linear chain while several processes write and project at once (11.6 Accept)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import PEPPER, POSTGRES_URL, require_postgres

from entrypoints.bootstrap import Gateway, Settings
from projections.audit_export import export_bundle

WRITER = textwrap.dedent("""
    import sys, time, uuid
    from pathlib import Path
    from application.envelope import Actor, Envelope, acting
    from entrypoints.bootstrap import Gateway, Settings
    url, schema, data_dir, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    gw = Gateway(Settings(data_dir=Path(data_dir), database_url=url, schema=schema,
                          key_pepper=PEPPER, master_key=bytes(range(32))))
    gw.start()  # each process runs its own projector: they compete for the chain
    print("ready", flush=True)
    sys.stdin.readline()  # all start writing together
    deadline = time.monotonic() + seconds
    with acting(Envelope(Actor("staff", "usr_" + uuid.uuid4().hex[:8]))):
        account = gw.accounts.open_account("w@example.com", "dev", "staff:test")
        n = 0
        while time.monotonic() < deadline:
            gw.accounts.grant_credits(account, 1, "concurrent chain grant",
                                      "usr_" + uuid.uuid4().hex[:8])
            n += 1
    gw.close()
    print(n, flush=True)
""").replace("PEPPER", repr(PEPPER))


def test_four_processes_writing_at_once_give_one_linear_verifiable_chain(pg_schema, tmp_path):
    from entrypoints.audit_verifier import verify_bundle

    url = require_postgres()
    Gateway(Settings(data_dir=tmp_path / "init", database_url=url, schema=pg_schema,
                     key_pepper=PEPPER, master_key=bytes(range(32)),
                     run_projector=False)).close()  # migrate once before the race
    procs = []
    for i in range(4):  # one at a time through start-up: the library's DDL is not concurrent
        proc = subprocess.Popen([sys.executable, "-c", WRITER, POSTGRES_URL, pg_schema,
                                 str(tmp_path / f"w{i}"), "8"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=Path(__file__).resolve().parents[2],
                                env={**os.environ, "GATEWAYZ_PG_POOL_SIZE": "1",
                                     "GATEWAYZ_PG_MAX_OVERFLOW": "2"})
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()[:3000]
        procs.append(proc)
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    written = [int(p.communicate(timeout=120)[0].strip() or 0) for p in procs]
    assert all(p.returncode == 0 for p in procs) and min(written) > 0

    gw = Gateway(Settings(data_dir=tmp_path / "check", database_url=url, schema=pg_schema,
                          key_pepper=PEPPER, master_key=bytes(range(32)), run_projector=False))
    try:
        gw.projector.run_until_idle()
        gw.audit.note(force=True)
        gw.audit.sign_pending()
        export_bundle(gw.stores, gw.db, gw.clock, tmp_path / "bundle")
        with gw.db.transaction() as cur:
            cur.execute("SELECT COUNT(*), COUNT(DISTINCT prev_hash), MAX(seq) FROM audit_entries")
            count, distinct, top = cur.fetchone()
    finally:
        gw.close()
    report = verify_bundle(tmp_path / "bundle")
    assert report.valid, report.to_json()
    assert count == distinct == top >= sum(written)
