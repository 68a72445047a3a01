"""The Starlette application: routes, middleware and error handlers handed to the
constructor; the clients and services built in the lifespan, kept as one typed object
(api/state.py)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import anyio.to_thread
from rq import Queue
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware

from amphi import logs, metrics
from amphi.coalesce import Coalescer
from amphi.outages import Outage
from amphi.payments import gateway
from amphi.settings import Settings
from amphi.signing import load_signer
from amphi.waiting_room import Tokens
from api import admin, holds, openapi, ops, payments, queue, scan, tickets, venues, web
from api.errors import HANDLERS
from api.forwarded import ForwardedHeaders, TrustedProxies
from api.middleware import RequestContext
from api.queue_polls import QueuePolls
from api.security import SecurityHeaders, cors, web_csp
from api.state import Amphi, Outages
from engine import scripts
from engine.holds import HoldEngine
from engine.transport.connection import async_client, queue_client, sync_client
from ledger.catalog import Catalog, load_catalog
from ledger.db import async_engine, async_session_factory, session_factory, sync_engine
from services import finalize, queueing
from services.checkout import Purchases
from services.waiting_room import WaitingRoom

log = logging.getLogger(__name__)


async def _refresh_catalog(services: Amphi, every: int) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            async with services.sessions() as session:
                services.catalog = await load_catalog(session)
        except Exception as exc:  # the database is down: its outage lines say so
            log.warning("catalog refresh failed; serving the previous catalogue",
                        extra={"error": f"{type(exc).__name__}: {exc}"[:300]})


async def _select_one(db: AsyncEngine) -> None:
    async with db.connect() as conn:
        await conn.execute(text("SELECT 1"))


def _tune_gc() -> None:
    """The objects of start-up (modules, catalogue, clients) live as long as the process:
    freeze them out of the collector's sight, and collect the young generation less often.
    A hold allocates a few hundred short-lived objects, and with the defaults the collector
    ran every few requests and swept the whole heap now and then: measured with wrk at 100
    connections, +20 % holds/s and a p90 of 42 ms instead of 101 ms."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _purchase_batchers(queue: Queue, deps: finalize.Deps) -> tuple[
        Coalescer[finalize.Payment, None], Coalescer[finalize.Payment, finalize.Outcome]]:
    """The webhooks' payments go to the queue, and the confirms' to finalisation, in batches
    (amphi/coalesce.py says why)."""
    def enqueue(batch: list[finalize.Payment]) -> list[None]:
        queueing.enqueue_payments(queue, batch)
        return [None] * len(batch)

    # A webhook may wait 50 ms for others: each job costs the worker a dozen round trips of
    # RQ's own, and Stripe does not mind. A fan waits for the confirm: no lingering there.
    return (Coalescer(enqueue, linger=0.05),
            Coalescer(functools.partial(finalize.finalize_orders, deps), max_batch=50))


def create_app(settings: Settings | None = None, *,
               clock: Callable[[], datetime] | None = None) -> Starlette:
    """`clock` (timezone-aware "now") decides what day it is at the gates; tests set it."""
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with _services(app, settings, clock or (lambda: datetime.now(UTC))) as services:
            app.state.amphi = services
            refresher = asyncio.create_task(
                _refresh_catalog(services, settings.catalog_refresh_seconds))
            log_flusher = asyncio.create_task(logs.flush_every())
            log.info("api ready", extra={"sections": len(services.catalog.sections)})
            _tune_gc()
            try:
                yield
            finally:
                for task in (refresher, log_flusher):
                    task.cancel()
                for handler in logging.getLogger().handlers:
                    handler.flush()  # the access lines still buffered

    logs.configure(settings.log_level, settings.log_format)
    app = Starlette(
        routes=[  # Starlette tries them in order: the on-sale's hot paths first
            *holds.routes,
            *queue.routes,
            *venues.routes,
            *ops.routes,
            *payments.routes,
            *tickets.routes,
            *scan.routes,
            *openapi.routes,
            *web.routes,  # the fan app and the gate page (docs/web.md)
        ],
        middleware=[
            Middleware(ForwardedHeaders, trusted=TrustedProxies(settings.forwarded_allow_ips)),
            Middleware(RequestContext),
            Middleware(SecurityHeaders, hsts=settings.app_env == "production",
                       web_policy=web_csp(stripe=not settings.demo_mode)),
            *cors(settings),
            Middleware(QueuePolls),  # innermost: a poll gets every header above
        ],
        exception_handlers=HANDLERS,
        lifespan=lifespan,
    )
    admin.mount(app, settings)  # /admin: the box office (sqladmin), behind its own login
    return app


@contextlib.asynccontextmanager
async def _services(app: Starlette, settings: Settings,
                    clock: Callable[[], datetime]) -> AsyncIterator[Amphi]:
    """Every client and service of one API process, closed when the app stops."""
    async with contextlib.AsyncExitStack() as stack:
        redis = async_client(settings.redis_url, max_connections=settings.redis_max_connections)
        stack.push_async_callback(redis.aclose)
        db = async_engine(settings.database_url)
        stack.push_async_callback(db.dispose)
        # Finalisation (demo/manual confirm) is synchronous code, run in threads.
        sync_redis = sync_client(settings.redis_url)
        sync_db = sync_engine(settings.database_url, pre_ping=False)
        stack.callback(sync_redis.close)
        stack.callback(sync_db.dispose)
        queue = Queue(queueing.DEFAULT, connection=queue_client(settings.rq_url))
        stack.callback(queue.connection.close)
        await scripts.aload_all(redis)
        sessions = async_session_factory(db)
        async with sessions() as session:
            catalog = await load_catalog(session)
        engine = HoldEngine(
            redis,
            ttl_seconds=settings.hold_ttl_seconds,
            max_quantity=settings.hold_max_quantity,
            max_active_per_owner=settings.hold_max_active_per_owner,
            rate_limit_per_minute=settings.hold_rate_limit_per_minute,
            id_secret=settings.jwt_secret.encode(),
            autopipeline=settings.redis_autopipeline,
            observe_batch=metrics.REDIS_BATCH.observe,
        )
        if engine.pipeline:
            stack.push_async_callback(engine.pipeline.aclose)
        payment_gateway = gateway(settings)
        signer = load_signer(settings.ticket_signing_key, settings.ticket_signing_key_file)
        sync_sessions = session_factory(sync_db)
        deps = queueing.finalize_deps(redis=sync_redis, sessions=sync_sessions,
                                      payments=payment_gateway, queue=queue, signer=signer)
        payments_queue, confirms = _purchase_batchers(queue, deps)
        stack.push_async_callback(confirms.aclose)
        stack.push_async_callback(payments_queue.aclose)
        outages = Outages(
            redis=Outage("redis", redis.ping),
            database=Outage("database", lambda: _select_one(db)),
            queue=Outage("job queue", lambda: anyio.to_thread.run_sync(queue.connection.ping)))
        for outage in (outages.redis, outages.database, outages.queue):
            stack.push_async_callback(outage.aclose)
        services: Amphi | None = None

        def current_catalog() -> Catalog:
            assert services is not None
            return services.catalog

        services = Amphi(
            settings=settings, clock=clock, redis=redis, holds=engine, catalog=catalog,
            sections_cache=venues.sections_loader(app, settings.sections_cache_seconds),
            seat_map_cache=venues.seat_map_loader(app, settings.sections_cache_seconds),
            db=db, sessions=sessions,
            sync_sessions=sync_sessions, signer=signer, queue=queue,
            purchases=Purchases(
                holds=engine, catalog=current_catalog,
                # one statement each, atomic on its own: no BEGIN and ROLLBACK round trips
                db=db.execution_options(isolation_level="AUTOCOMMIT"),
                sessions=sessions, payments=payment_gateway,
                stripe_slots=asyncio.Semaphore(settings.stripe_max_concurrency),
                payments_queue=payments_queue, confirms=confirms,
                enqueue_fail=lambda order_id, event_id, event_type, reason:
                    queueing.enqueue_fail(queue, order_id, event_id, event_type, reason),
                queue_outage=outages.queue),
            waiting_room=WaitingRoom(redis, Tokens(settings.jwt_secret),
                                     pipeline=engine.pipeline),
            outages=outages,
        )
        yield services


def app_from_env() -> Starlette:
    """uvicorn factory: `uvicorn --factory api.app:app_from_env`."""
    return create_app()
