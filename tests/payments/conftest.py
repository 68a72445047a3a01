"""Fixtures of the payment tests: checkout, confirm, Stripe webhooks, the RQ workers that
finalise orders and send the email, and the fans' ticket lists.

Isolation. These tests share no storage with the other suites, which may run at the same
time: the hold engine uses Redis db 10 (TEST_PAYMENTS_REDIS_URL), RQ uses db 11
(TEST_PAYMENTS_RQ_URL) and the ledger is the database `amphi_test_payments`
(TEST_PAYMENTS_DATABASE_URL), migrated once. Before each test both Redis databases are
flushed and the venue is set up afresh (ledger truncated, every block loaded), as in
tests/api.

Stripe is external: a real `localstripe` server (session-wide, a subprocess on a free port)
behind the real `stripe` client; webhooks carry real signatures.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from rq import Queue
from sqlalchemy import Engine, text

from amphi.settings import Settings
from runtime import devservices
from services import queueing
from tests._servers import child_server, free_port, redis_db_url, settings_env
from tests._storage import flushed_redis, migrated_ledger, own_services
from tests.api._support import VenueFixture, build_venue, running_api
from tests.payments._support import (
    REPO,
    SECRET_KEY,
    WEBHOOK_SECRET,
    assert_no_failed_jobs,
)
from workers import context
from workers.queues import AmphiWorker

PAY_REDIS_URL = os.environ.get("TEST_PAYMENTS_REDIS_URL", "redis://127.0.0.1:6379/10")
PAY_RQ_DB = int(os.environ.get("TEST_PAYMENTS_RQ_DB", "11"))
PAY_DATABASE_URL = os.environ.get(
    "TEST_PAYMENTS_DATABASE_URL",
    "postgresql+psycopg://postgres@127.0.0.1:5432/amphi_test_payments",
)
LOCALSTRIPE_STARTUP_SECONDS = 20


# -- storage ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def services() -> Iterator[devservices.Services]:
    """Overrides tests/conftest.py: this suite's own Redis db and database."""
    with own_services(PAY_REDIS_URL, PAY_DATABASE_URL) as found:
        yield found


@pytest.fixture(scope="session")
def settings(services: devservices.Services,
             tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Overrides tests/conftest.py (a session fixture there would be cached with the other
    suites' services)."""
    return Settings(
        # QR payloads are signed: one key for the app and the workers, not in the repo
        ticket_signing_key_file=str(tmp_path_factory.mktemp("keys") / "signing"),
        app_env="test",
        redis_url=services.redis_url,
        rq_redis_url=redis_db_url(services.redis_url, PAY_RQ_DB),
        database_url=services.database_url,
        hold_ttl_seconds=600,
        hold_rate_limit_per_minute=0,
        log_level="WARNING",
        log_format="text",
        outbox_dir=str(REPO / ".embedded" / "test" / "outbox-unused"),
    )


@pytest.fixture(scope="session")
def ledger_engine(settings: Settings) -> Iterator[Engine]:
    with migrated_ledger(settings.database_url) as engine:
        yield engine


@pytest.fixture
def redis_client(settings: Settings) -> Iterator[redis.Redis]:
    """The hold engine's Redis, flushed, every script loaded."""
    with flushed_redis(settings.redis_url) as client:
        yield client


@pytest.fixture
def rq_redis(settings: Settings) -> Iterator[redis.Redis]:
    """RQ's Redis, flushed."""
    client = redis.Redis.from_url(settings.rq_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def queue(rq_redis: redis.Redis) -> Queue:
    """Finalisation's queue (the webhooks' batches)."""
    return Queue(queueing.DEFAULT, connection=rq_redis)


@pytest.fixture
def email_queue(rq_redis: redis.Redis) -> Queue:
    return Queue(queueing.EMAIL, connection=rq_redis)


@pytest.fixture
def venue(ledger_engine: Engine, redis_client: redis.Redis, rq_redis: redis.Redis) -> VenueFixture:
    """A clean Pacific Amphitheatre (June 19-21 2027) in the ledger and Redis; no orders,
    tickets, ticket types or Stripe events left from an earlier test."""
    with ledger_engine.begin() as conn:
        conn.execute(text("TRUNCATE ticket_types, stripe_events CASCADE"))
    return build_venue(ledger_engine, redis_client)


# -- settings and the app -----------------------------------------------------------------------
@pytest.fixture
def demo_settings(settings: Settings, tmp_path: Path) -> Settings:
    """Demo mode (no Stripe key); emails go to a temporary outbox."""
    return settings.replace(outbox_dir=str(tmp_path / "outbox"))


@pytest.fixture
def stripe_settings(demo_settings: Settings, localstripe: str) -> Settings:
    return demo_settings.replace(stripe_secret_key=SECRET_KEY,
                                 stripe_webhook_secret=WEBHOOK_SECRET,
                                 stripe_api_base=localstripe)


ApiOpener = Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def open_api(venue: VenueFixture) -> ApiOpener:
    """`async with open_api(settings) as client:` the real app in its lifespan."""

    def opener(settings: Settings, client_addr: tuple[str, int] = ("127.0.0.1", 50000),
               **changes: Any) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
        return running_api(settings.replace(**changes), client_addr)

    return opener


# -- Stripe -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A localstripe server for the session; yields its base URL."""
    url = f"http://127.0.0.1:{(port := free_port())}"
    argv = [sys.executable, "-m", "tests.payments._localstripe", "--port", str(port),
            "--from-scratch"]

    def answers() -> bool:
        auth = {"Authorization": f"Bearer {SECRET_KEY}"}
        return httpx.get(f"{url}/v1/payment_intents", headers=auth, timeout=1).status_code == 200

    log_path = tmp_path_factory.mktemp("localstripe") / "localstripe.log"
    with child_server(argv, env=dict(os.environ), log_path=log_path, name="localstripe",
                      answers=answers, timeout=LOCALSTRIPE_STARTUP_SECONDS):
        yield url


# -- the RQ worker, in-process ------------------------------------------------------------------
def reset_worker_context() -> None:
    """Forget the worker context's cached Settings and clients (they are read from the
    environment once per process)."""
    if context.sessions.cache_info().currsize:
        context.sessions().kw["bind"].dispose()
    for cached in (context.hold_redis, context.queue_redis):
        if cached.cache_info().currsize:
            cached().close()
    for fn in (context.settings, context.hold_redis, context.queue_redis, context.sessions,
               context.payments):
        fn.cache_clear()


class InProcessWorker:
    """The worker `amphi worker` runs, in the test process, over the environment of given
    Settings."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, queue: Queue) -> None:
        self.monkeypatch = monkeypatch
        self.queue = queue

    def use(self, settings: Settings) -> None:
        """Point the worker context at `settings` (as a worker started with its env)."""
        for name, value in settings_env(settings).items():
            self.monkeypatch.setenv(name, value)
        reset_worker_context()

    def run(self, settings: Settings, *, check: bool = True) -> None:
        """Work every queue until they are empty (jobs enqueued meanwhile included)."""
        self.use(settings)
        queues = [Queue(name, connection=self.queue.connection) for name in queueing.QUEUES]
        worker = AmphiWorker(queues, connection=self.queue.connection)
        worker.work(burst=True)
        if check:
            for queue in queues:
                assert_no_failed_jobs(queue)


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch, queue: Queue) -> Iterator[InProcessWorker]:
    reset_worker_context()
    yield InProcessWorker(monkeypatch, queue)
    reset_worker_context()
