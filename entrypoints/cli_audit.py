"""``gatewayz audit``: export a bundle, verify one offline, write a checkpoint now (11.7, 11.8)."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_export(args: argparse.Namespace) -> int:
    from entrypoints.bootstrap import Gateway, Settings
    from projections.audit_export import export_bundle

    gateway = Gateway(Settings.from_env(args.data_dir, run_projector=False))
    try:
        gateway.projector.run_until_idle()
        gateway.audit.sign_pending()
        manifest = export_bundle(gateway.stores, gateway.db, gateway.clock, Path(args.bundle))
    finally:
        gateway.close()
    print(f"wrote {args.bundle}: {manifest['entries']} entries, {manifest['events']} events, "
          f"{manifest['checkpoints']} checkpoints")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Needs no database and no secret: the independent verifier reads the bundle alone."""
    from entrypoints.audit_verifier import main as verifier_main

    return verifier_main(["verify", *args.rest])


def cmd_checkpoint(args: argparse.Namespace) -> int:
    from entrypoints.bootstrap import Gateway, Settings

    gateway = Gateway(Settings.from_env(args.data_dir, run_projector=False))
    try:
        gateway.projector.run_until_idle()
        seq = gateway.audit.note(force=True)
        gateway.audit.sign_pending()
    finally:
        gateway.close()
    print("nothing new to checkpoint" if seq is None else f"checkpoint written at seq {seq}")
    return 0


def register(commands, with_data_dir) -> None:
    audit = commands.add_parser("audit", help="the audit trail: export, verify, checkpoint")
    sub = audit.add_subparsers(dest="audit_command", required=True)
    export = with_data_dir(sub.add_parser("export", help="write a self-contained bundle"))
    export.add_argument("bundle", help="directory to write")
    export.set_defaults(run=cmd_export)
    verify = sub.add_parser("verify", help="verify a bundle offline (exit 0 valid, 1 "
                            "tampered, 2 cannot verify)", add_help=False)
    verify.add_argument("rest", nargs=argparse.REMAINDER,
                        help="BUNDLE [--checkpoints DIR] [--public-keys FILE] [--from SEQ] "
                             "[--chain-only] [--json]")
    verify.set_defaults(run=cmd_verify)
    checkpoint = with_data_dir(sub.add_parser("checkpoint", help="checkpoint the head now"))
    checkpoint.set_defaults(run=cmd_checkpoint)
