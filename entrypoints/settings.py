"""The gateway's settings: from the environment, or given by a test or a CLI command."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str | None = None
    redis_url: str | None = None
    kafka_bootstrap_servers: str | None = None  # set: publish every event to Kafka (11.11)
    schema: str = "public"
    key_pepper: bytes | None = None
    master_key: bytes | None = None
    run_projector: bool = True
    memory_events: bool = False  # tests: events in memory, read models in a SQLite file
    redis_prefix: str = "gw"

    @classmethod
    def from_env(cls, data_dir: str | None = None, **overrides) -> Settings:
        env = os.environ
        if "redis_prefix" not in overrides and env.get("GATEWAYZ_REDIS_PREFIX"):
            overrides["redis_prefix"] = env["GATEWAYZ_REDIS_PREFIX"]
        pepper = env.get("GATEWAYZ_KEY_PEPPER")
        master = env.get("GATEWAYZ_MASTER_KEY")
        return cls(data_dir=Path(data_dir or env.get("GATEWAYZ_DATA_DIR", "gatewayz-data")),
                   database_url=env.get("DATABASE_URL") or None,
                   redis_url=env.get("REDIS_URL") or None,
                   kafka_bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS") or None,
                   schema=env.get("GATEWAYZ_DB_SCHEMA", "public"),
                   key_pepper=pepper.encode() if pepper else None,
                   master_key=bytes.fromhex(master) if master else None, **overrides)
