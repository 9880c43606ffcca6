"""The ``gatewayz`` command: serve, migrate, projector, relay, replay --verify, admin bootstrap."""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import sys
import threading

from entrypoints import cli_audit
from entrypoints.bootstrap import Gateway, Settings


def _settings(args: argparse.Namespace, **overrides) -> Settings:
    return Settings.from_env(getattr(args, "data_dir", None), **overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from entrypoints.http.app import create_app

    settings = _settings(args, run_projector=not args.no_projector)
    if args.no_projector and not settings.redis_url:
        # Holds are released by whoever projects; in-process holds would never be released.
        print("--no-projector needs REDIS_URL: the separate projector releases holds in Redis",
              file=sys.stderr)
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = open(settings.data_dir / "serve.lock", "w")  # noqa: SIM115 - held for the process
    os.chmod(lock.name, 0o600)  # like every file in the data dir: owner-only (issue 9)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"another `gatewayz serve` is using {settings.data_dir}; refusing to start",
              file=sys.stderr)
        return 1
    try:
        gateway = Gateway(settings)
    except Exception as error:  # e.g. DATABASE_URL set but unreachable: exit, never fall back
        print(f"cannot start: {error}", file=sys.stderr)
        return 1
    where = "PostgreSQL" if settings.database_url else f"SQLite in {settings.data_dir}"
    print(f"gatewayz listening on http://{args.host}:{args.port} (events: {where}; "
          f"holds: {'Redis' if settings.redis_url else 'in-process'})", flush=True)
    print("first run? create the owner and a staff token with: "
          f"gatewayz admin bootstrap --data-dir {settings.data_dir}", flush=True)
    # proxy_headers off: the client address is the socket peer unless a trusted proxy range
    # is configured (spec 1.6), and uvicorn's default would trust X-Forwarded-For.
    uvicorn.run(create_app(gateway), host=args.host, port=args.port, log_level="warning",
                access_log=False, timeout_graceful_shutdown=5, proxy_headers=False,
                server_header=False, http="entrypoints.http.edge_protocol:EdgeHttpProtocol")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    gateway = Gateway(_settings(args, run_projector=False))
    gateway.close()
    print("read-model schema is up to date")
    return 0


def cmd_projector(args: argparse.Namespace) -> int:
    gateway = Gateway(_settings(args, run_projector=False))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    gateway.projector.start(poll_interval=0.05)
    print("projector running; Ctrl-C to stop", flush=True)
    stop.wait()
    gateway.close()
    return 0


def cmd_relay(args: argparse.Namespace) -> int:
    from entrypoints.relay import run_process

    return run_process(_settings(args, run_projector=False))


def cmd_replay(args: argparse.Namespace) -> int:
    from projections.rebuild import TABLES, Progress, rebuild
    from projections.verify import verify

    if bool(args.verify) == bool(args.rebuild):
        print("give one of --verify or --rebuild <projection|all>", file=sys.stderr)
        return 2
    gateway = Gateway(_settings(args, run_projector=False))
    if args.rebuild:
        try:
            gateway.projector.run_until_idle()
            rebuild(gateway.config, gateway.stores, gateway.db, args.rebuild)
        except ValueError as error:
            print(str(error), file=sys.stderr)
            return 2
        finally:
            gateway.close()
        print(f"replay rebuild: {args.rebuild} rebuilt and switched in")
        return 0
    try:
        gateway.projector.run_until_idle()
        total = sum(gateway.stores.max_positions().values())
        reports = verify(gateway.config, gateway.stores, gateway.db,
                         Progress(total, sys.stderr).update)
        if args.projection:
            keep = set(TABLES.get(args.projection, ()))
            reports = [r for r in reports if r.table in keep]
        # The shared hold store is checked too; the embedded one lives in `serve`.
        hold_differences = gateway.reconciler.verify() if gateway.settings.redis_url else []
        with gateway.db.transaction() as cur:
            cur.execute("SELECT COUNT(*) FROM projection_failures")
            skipped = int(cur.fetchone()[0])
    finally:
        gateway.close()
    failed = False
    for report in reports:
        state = "match" if report.match else "DIFFERENT"
        print(f"{report.table:22} rows live={report.live_rows:<8} rebuilt={report.rebuilt_rows:<8}"
              f" live={report.live_hash[:16]} rebuilt={report.rebuilt_hash[:16]} {state}")
        if not report.match:
            failed = True
            print(f"  first difference: {report.first_difference}")
    if skipped:
        print(f"warning: {skipped} event(s) could not be projected and were skipped "
              "(table projection_failures)")
    for line in hold_differences[:5]:
        failed = True
        print(f"hold store: {line}")
    print("replay verify: " + ("FAILED" if failed else "all read models match"))
    return 1 if failed else 0


def cmd_holds(args: argparse.Namespace) -> int:
    """Compare the shared (Redis) hold store with the open holds of the event store."""
    if not args.verify:
        print("only --verify is implemented in this version", file=sys.stderr)
        return 2
    settings = _settings(args, run_projector=False)
    if not settings.redis_url:
        print("holds verify: the embedded hold store lives inside `gatewayz serve`, which "
              "reconciles it with the event store on start and every sweep; check it "
              "with GET /admin/holds/verify on the serving process")
        return 0
    gateway = Gateway(settings)
    try:
        differences = gateway.reconciler.verify()
    finally:
        gateway.close()
    for line in differences[:20]:
        print(line)
    print("holds verify: " + (f"FAILED ({len(differences)} differences; first above)"
                              if differences else "hold store matches the event store"))
    return 1 if differences else 0


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from domain.errors import DomainError

    gateway = Gateway(_settings(args, run_projector=False))
    try:
        user_id, token = gateway.access.bootstrap_owner(args.email)
    except DomainError as error:
        print(error.message, file=sys.stderr)
        return 1
    finally:
        gateway.close()
    print(token)
    print(f"owner {user_id} created; the staff token above is shown once", file=sys.stderr)
    return 0


DEMO_SNIPPET = """
Demo test key (shown once): {key}

  curl -s {base}/v1/chat/completions \\
    -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
    -d '{{"model": "gatewayz/echo", "messages": [{{"role": "user", "content": "Hello!"}}]}}'

  python3 -c 'from openai import OpenAI; c = OpenAI(base_url="{base}/v1", api_key="{key}"); \\
print(c.chat.completions.create(model="gatewayz/echo", messages=[{{"role": "user", "content": "Hello!"}}]).choices[0].message.content)'
"""


def cmd_demo_key(args: argparse.Namespace) -> int:
    """A demo account (created once) and a fresh test key for the free echo model."""
    gateway = Gateway(_settings(args, run_projector=False))
    try:
        marker = gateway.settings.data_dir / "demo-account"
        if marker.exists():
            account_id = marker.read_text().strip()
        else:
            account_id = gateway.accounts.open_account("demo@example.com", "dev", "system:demo",
                                                       origin="demo")
            marker.write_text(account_id)
        issued = gateway.access.issue_key(account_id, f"demo-{issued_suffix()}", "test", None,
                                          None, "system:demo")
    finally:
        gateway.close()
    print(DEMO_SNIPPET.format(key=issued.secret, base=args.base_url.rstrip("/")), flush=True)
    return 0


def issued_suffix() -> str:
    import secrets

    return secrets.token_hex(3)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gatewayz")
    commands = parser.add_subparsers(dest="command", required=True)

    def with_data_dir(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--data-dir", default=None,
                       help="embedded data directory (default ./gatewayz-data)")
        return p

    serve = with_data_dir(commands.add_parser("serve", help="run the gateway"))
    serve.add_argument("--host", default=os.environ.get("GATEWAYZ_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("GATEWAYZ_PORT", "8080")))
    serve.add_argument("--no-projector", action="store_true",
                       help="do not project in this process (run `gatewayz projector`)")
    serve.set_defaults(run=cmd_serve)
    with_data_dir(commands.add_parser("migrate", help="apply the read-model schema")) \
        .set_defaults(run=cmd_migrate)
    with_data_dir(commands.add_parser("projector", help="run projections")) \
        .set_defaults(run=cmd_projector)
    with_data_dir(commands.add_parser("relay", help="publish events to Kafka "
                                      "(KAFKA_BOOTSTRAP_SERVERS)")) \
        .set_defaults(run=cmd_relay)
    replay = with_data_dir(commands.add_parser("replay", help="rebuild and compare"))
    replay.add_argument("--verify", action="store_true",
                        help="rebuild into scratch tables and compare with the live ones")
    replay.add_argument("--projection", help="with --verify: compare only this projection")
    replay.add_argument("--rebuild", metavar="PROJECTION",
                        help="rebuild one projection (or all) and switch it in atomically")
    replay.set_defaults(run=cmd_replay)
    holds = with_data_dir(commands.add_parser("holds", help="compare the hold store"))
    holds.add_argument("--verify", action="store_true")
    holds.set_defaults(run=cmd_holds)
    cli_audit.register(commands, with_data_dir)
    admin = commands.add_parser("admin", help="administration")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    bootstrap = with_data_dir(admin_commands.add_parser("bootstrap",
                                                        help="create the first owner"))
    bootstrap.add_argument("--email", default="owner@localhost.localdomain")
    bootstrap.set_defaults(run=cmd_bootstrap)
    demo = with_data_dir(admin_commands.add_parser("demo-key",
                                                   help="a demo account and test key"))
    demo.add_argument("--base-url", default="http://127.0.0.1:8080")
    demo.set_defaults(run=cmd_demo_key)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
