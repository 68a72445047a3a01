"""Fixtures of the operations tests: reconcile, readiness, metrics and logs.

Isolation: these tests share no storage with the other suites, which may run at the same
time. The hold engine and RQ both use Redis db 8 (TEST_OPS_REDIS_URL) and the ledger is the
database `amphi_test_ops` (TEST_OPS_DATABASE_URL), migrated once. Before each test that asks
for `venue`, db 8 is flushed and the venue is set up afresh (ledger truncated, every block
loaded), as in tests/api. Demo payments unless a test asks for `stripe_settings`
(localstripe, the payment suite's fixture).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import Engine, text

from amphi.settings import Settings
from runtime import devservices
from tests._storage import flushed_redis, migrated_ledger, own_services
from tests.api._support import VenueFixture, build_venue, running_api
from tests.payments._support import SECRET_KEY, WEBHOOK_SECRET
from tests.payments.conftest import localstripe  # noqa: F401  (the payment suite's server)
from tests.scan._support import TEST_SIGNING_KEY

OPS_REDIS_URL = os.environ.get("TEST_OPS_REDIS_URL", "redis://127.0.0.1:6379/8")
OPS_DATABASE_URL = os.environ.get(
    "TEST_OPS_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/amphi_test_ops"
)

ApiOpener = Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture(scope="session")
def services() -> Iterator[devservices.Services]:
    """Overrides tests/conftest.py: this suite's own Redis db and database."""
    with own_services(OPS_REDIS_URL, OPS_DATABASE_URL) as found:
        yield found


@pytest.fixture(scope="session")
def settings(services: devservices.Services,
             tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Overrides tests/conftest.py. RQ shares db 8 with the hold engine (the suite has one
    db); a fixed signing key, so that apps, workers and CLI runs sign alike."""
    return Settings(
        app_env="test",
        redis_url=services.redis_url,
        database_url=services.database_url,
        hold_ttl_seconds=600,
        hold_rate_limit_per_minute=0,
        sections_cache_seconds=0,
        log_level="WARNING",
        log_format="text",
        outbox_dir=str(tmp_path_factory.mktemp("outbox")),
        ticket_signing_key=TEST_SIGNING_KEY,
    )


@pytest.fixture(scope="session")
def ledger_engine(settings: Settings) -> Iterator[Engine]:
    with migrated_ledger(settings.database_url) as engine:
        yield engine


@pytest.fixture
def redis_client(settings: Settings) -> Iterator[redis.Redis]:
    """Db 8 (hold engine and RQ), flushed, every script loaded."""
    with flushed_redis(settings.redis_url) as client:
        yield client


@pytest.fixture
def venue(ledger_engine: Engine, redis_client: redis.Redis) -> VenueFixture:
    """A clean Pacific Amphitheatre (June 19-21 2027) in the ledger and Redis: no orders,
    tickets, scans or Stripe events left from an earlier test."""
    with ledger_engine.begin() as conn:
        conn.execute(text("TRUNCATE scans, ticket_types, stripe_events CASCADE"))
    return build_venue(ledger_engine, redis_client)


@pytest.fixture
def stripe_settings(settings: Settings, localstripe: str) -> Settings:  # noqa: F811
    return settings.replace(stripe_secret_key=SECRET_KEY, stripe_webhook_secret=WEBHOOK_SECRET,
                            stripe_api_base=localstripe)


@pytest.fixture
def open_api(venue: VenueFixture, settings: Settings) -> ApiOpener:
    """`async with open_api(**setting_changes) as client:` the real app in its lifespan."""

    def opener(base: Settings | None = None, **changes: Any
               ) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
        return running_api((base or settings).replace(**changes))

    return opener
