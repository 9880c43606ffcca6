"""The only place that wires adapters into the use cases: settings in, a Gateway out."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from adapters.audit_signing import AuditSigner
from adapters.clock import SystemClock
from adapters.data_keys import DataKeyStore
from adapters.holds_memory import InProcessHoldStore
from adapters.idempotency_sql import SqlIdempotencyStore
from adapters.persistence.append_only import install_append_only
from adapters.persistence.database import open_database
from adapters.persistence.migrate import migrate
from adapters.persistence.store_config import StoreConfig
from adapters.probe_store import SqlProbeStore
from adapters.providers.echo import EchoClient
from adapters.providers.http_client import AiohttpProviderClient
from adapters.responses_sql import SqlResponseStore
from adapters.secret_box import SecretBox, SqlSecretVault, load_or_create_secret
from adapters.workers import LocalWorkerRegistry, RedisWorkerRegistry, SqlWorkerRegistry
from application.access import AccessService
from application.accounts import AccountService
from application.anonymous import AnonymousInference
from application.catalog import CatalogService
from application.catalog_listing import Listing, Popularity
from application.catalog_view import CatalogView
from application.crashpoints import crash_point
from application.erasure import ErasureService
from application.event_stores import EventStores
from application.group_commit import GroupCommitWriter
from application.hold_reconciler import HoldReconciler
from application.inference import InferenceService
from application.key_settings import KeySettingsService
from application.probes import Prober
from application.responses_store import ResponsesService
from application.security_events import SecurityRecorder
from application.staff import StaffService
from entrypoints.maintenance import Maintenance
from entrypoints.rate_limits import RateLimits
from entrypoints.routing import Routing, catalog_seed
from entrypoints.settings import Settings
from projections.access import AccessQueries
from projections.audit_checkpoints import AuditCheckpoints
from projections.balances import BalanceQueries
from projections.catalog import CatalogQueries
from projections.hold_queries import HoldQueries
from projections.ledger_queries import LedgerQueries
from projections.runner import Projector
from projections.usage import UsageQueries

log = logging.getLogger("gatewayz")


class Gateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        data_dir = settings.data_dir
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(data_dir, 0o700)  # mkdir's mode is cut by the umask and skips an existing dir
        if settings.database_url:
            config = StoreConfig.from_url(settings.database_url, settings.schema)
            # Every worker must hash keys and decrypt secrets alike: no per-machine files.
            if settings.key_pepper is None:
                raise SystemExit("GATEWAYZ_KEY_PEPPER (>= 32 bytes) is required with "
                                 "DATABASE_URL")
            if settings.master_key is None:
                raise SystemExit("GATEWAYZ_MASTER_KEY (64 hex characters) is required with "
                                 "DATABASE_URL")
        elif settings.memory_events:
            config = StoreConfig.memory(str(data_dir / "read-models.sqlite"))
        else:
            config = StoreConfig.sqlite(str(data_dir / "gatewayz.sqlite"))
        pepper = settings.key_pepper or load_or_create_secret(data_dir / "key-pepper")
        if len(pepper) < 32:
            raise SystemExit("the key pepper must be at least 32 bytes")
        master = settings.master_key or load_or_create_secret(data_dir / "master-key")
        if len(master) != 32:
            raise SystemExit("the master key must be 32 bytes (64 hex characters)")
        self.config = config
        self.clock = SystemClock()
        self.db = open_database(config)
        migrate(self.db)
        self.stores = EventStores(config.app_env)
        # 11.1: the events tables exist only now; make them append-only (no-op in memory).
        install_append_only(self.stores.by_context())
        self.holds = InProcessHoldStore()
        self.workers = self._worker_registry(settings)
        if settings.redis_url:
            from adapters.holds_redis import RedisHoldStore

            self.holds = RedisHoldStore(settings.redis_url, settings.redis_prefix)
        self.balances = BalanceQueries(self.db)
        self.hold_queries = HoldQueries(self.db)
        self.ledger = LedgerQueries(self.db)
        self.access_queries = AccessQueries(self.db)
        self.usage = UsageQueries(self.db)
        catalog_queries = CatalogQueries(self.db)
        self.catalog_view = CatalogView(catalog_queries, catalog_seed())
        self.listing = Listing(catalog_queries.listed)
        self.popularity = Popularity(self.usage.requests_per_model, self.clock.now)
        self.routing = Routing(self.catalog_view, self.stores.catalog, settings.redis_url,
                               settings.redis_prefix,
                               lambda context, position: self.projector.wait_for(context,
                                                                                 position))
        self.health_status = self.routing.model_status  # /v1/models health_status
        self.provider_status = self.routing.provider_status
        self.idempotency = SqlIdempotencyStore(self.db, worker_id=self.workers.worker_id,
                                               worker_alive=self.workers.alive,
                                               clock=self.clock)
        box = SecretBox(master)
        self.vault = SqlSecretVault(self.db, box)
        # Personal data: one data key per account, wrapped by the master key (10.5, 11.12).
        self.data_keys = DataKeyStore(self.db, box, self.clock)
        self.reconciler = HoldReconciler(self.holds, self.hold_queries, self.stores.requests,
                                         self.workers)
        self.projector = Projector(self.stores, self.db, after_commit=self._after_commit,
                                   on_foreign_progress=self._foreign_progress)
        wait = self.projector.wait_for
        self.accounts = AccountService(self.stores, self.data_keys, self.clock, wait)
        self.erasure = ErasureService(self.stores, self.data_keys, wait)
        self.access = AccessService(self.stores, self.access_queries, pepper, self.data_keys,
                                    self.clock, wait)
        self.staff = StaffService(self.stores, self.access_queries, pepper, self.data_keys,
                                  self.clock, wait)
        self.key_settings = KeySettingsService(self.stores, self.access_queries, self.clock,
                                               wait)
        # Security events (11.3): client IPs under the master key, as no account owns them.
        self.security = SecurityRecorder(self.stores.access, box, self.clock, pepper,
                                         self.access_queries.key_by_hash)
        self.catalog = CatalogService(self.stores, self.vault, self.clock, wait,
                                      self.catalog_view)
        self.routing.attach(self, catalog_queries, wait)
        self.responses = ResponsesService(SqlResponseStore(self.db, self.data_keys,
                                                           self.clock), self.clock)
        # No wake per commit: the projector polls, so its work batches up off the hot path.
        self.writer = GroupCommitWriter(self.stores.requests)
        self.http_client = AiohttpProviderClient()
        self.inference = InferenceService(
            self.catalog_view, self.holds, self.writer, self.reconciler.load_account,
            {"http": self.http_client, "echo": EchoClient()}, self.vault.get, self.clock,
            worker_id=self.workers.worker_id, resolver=self.routing.resolver,
            health=self.routing.health)
        self.anonymous = AnonymousInference(self.inference)  # free models, no key (1.11)
        # Active health probes (3.1): the platform's credentials and the shared provider
        # client; results in an operational table, fed to routing health and incidents.
        self.prober = Prober(lambda: self.catalog_view.snapshot, self.http_client,
                             self.vault.get, self.routing.health, self.incidents,
                             SqlProbeStore(self.db), self.clock,
                             worker_id=self.workers.worker_id)
        self.rate_limits = RateLimits(settings.redis_url, settings.redis_prefix, self.db)
        self.limiter = self.rate_limits.limiter
        self.inference.settler.on_settled = self.rate_limits.count_tokens
        sink = os.environ.get("GATEWAYZ_AUDIT_CHECKPOINT_DIR") or data_dir / "audit-checkpoints"
        self.audit = AuditCheckpoints(self.db, self.stores.access, AuditSigner(master),
                                      self.clock, wait, Path(sink))
        self.maintenance = Maintenance(self)
        self.relay = None  # the Kafka relay, started with the projector when configured
        self._started = False
        self._closed = False

    def _worker_registry(self, settings: Settings):
        if settings.redis_url:
            import redis

            client = redis.Redis.from_url(settings.redis_url, socket_timeout=2,
                                          socket_connect_timeout=2)
            return RedisWorkerRegistry(client, settings.redis_prefix)
        if settings.database_url:
            return SqlWorkerRegistry(self.db)
        return LocalWorkerRegistry()

    # -- projector side effects -------------------------------------------------------------
    def _after_commit(self, cur, effects):
        version = BalanceQueries.version(cur)
        snapshots = {account_id: BalanceQueries.snapshot(cur, account_id, version)
                     for account_id in effects.touched_accounts}

        def publish() -> None:
            if effects.released_holds:  # the crash matrix's step: a settlement projected
                crash_point("after_projection")
            # The fast path. A publication lost here (Redis away, a crash) is repaired by
            # the reconciler from durable facts, so nothing waits in memory for a retry.
            for account_id, snapshot in snapshots.items():
                if snapshot is None:
                    continue
                try:
                    self.holds.publish(account_id, snapshot,
                                       effects.released_holds.get(account_id, []))
                except Exception:
                    log.warning("hold store unavailable; the reconciler will catch up")
                    break
            if effects.access_changed:
                self.access.forget_cached()
            if effects.catalog_changed:
                self.catalog_view.refresh()
            if effects.config_changed:
                self.rate_limits.load_bypass()

        return publish

    def _foreign_progress(self, context: str) -> None:
        """Another process projected ``context``: redo here what its commit did elsewhere."""
        if context == "catalog":
            self.catalog_view.refresh()
        elif context == "access":
            self.access.forget_cached()
            self.rate_limits.load_bypass()
        elif not self.settings.redis_url:
            # Every projector publishes to a shared (Redis) store itself; an in-process
            # store hears of another process's projection only by noticing it.
            self._reconcile_holds()

    def _reconcile_holds(self) -> None:
        try:
            self.holds.forget_idle()  # balances another process may have moved: reload on use
            self.reconciler.reconcile_all()
        except Exception:
            log.warning("hold reconciliation failed; the next sweep retries")

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self.security.start()
        try:
            self.workers.beat()
        except Exception:  # Redis away: billed requests get 503 until it is back
            log.warning("worker heartbeat failed at start; retrying in the background")
        self.projector.run_until_idle()
        self.catalog_view.refresh()
        self.hf.load()  # 5.6: the last enrichment in memory before the first listing
        self.rate_limits.load_bypass()
        self._reconcile_holds()
        if self.settings.run_projector:
            self.projector.start(poll_interval=0.05 if self.config.kind != "memory" else 0.01)
            if self.settings.kafka_bootstrap_servers:
                from entrypoints.relay import relay_for

                self.relay = relay_for(self, self.settings.kafka_bootstrap_servers)
                self.relay.start()

    async def start_async(self) -> None:
        await asyncio.to_thread(self.start)
        self.maintenance.start()

    async def stop_async(self) -> None:
        await self.maintenance.stop()
        await self.http_client.close()
        await self.limiter.close()
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        if self._closed:  # the app's shutdown and its owner may both close it
            return
        self._closed = True
        self.security.close()  # first: its last counts reach the store before it closes
        self.writer.close()
        self.routing.stop()
        self.projector.stop()  # first: one projector at a time in this process
        if self.settings.run_projector and self._started:
            try:  # 11.7: a checkpoint at shutdown covers the last entries
                self.projector.run_until_idle()
                self.audit.shutdown()
            except Exception:
                log.warning("could not write the shutdown checkpoint", exc_info=True)
        if self.relay is not None:
            self.relay.stop()
        self.stores.close()
        self.db.close()

    def check_ready(self) -> dict[str, bool]:
        checks = {"event_store": True, "read_models": True,
                  "writer": self.writer.health() is None,
                  "projector": self.projector.health() is None}
        try:
            self.stores.requests.recorder.max_notification_id()
        except Exception:
            checks["event_store"] = False
        try:
            with self.db.transaction() as cur:
                cur.execute("SELECT 1")
        except Exception:
            checks["read_models"] = False
        return checks
