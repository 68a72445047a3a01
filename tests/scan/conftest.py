"""Fixtures of the gate-scanning tests.

Isolation: these tests share no storage with the other suites, which may run at the same
time. The hold engine uses Redis db 12 (TEST_SCAN_REDIS_URL), RQ db 13 (TEST_SCAN_RQ_DB) and
the ledger is the database `amphi_test_scan` (TEST_SCAN_DATABASE_URL), migrated once.

Tickets are bought once for the session through the product (hold, checkout, demo confirm)
and read back from the ledger; before each test that asks for `fresh` the scan log is
emptied and every ticket is `issued` again. The app signs with a fixed test key.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
import redis
from sqlalchemy import Engine, text

from amphi.settings import Settings
from engine import scripts
from runtime import devservices
from tests._servers import redis_db_url
from tests._storage import migrated_ledger, own_services
from tests.api._support import VenueFixture, build_venue
from tests.payments._support import checkout, confirm, make_hold
from tests.scan._support import (
    JUNE_19,
    JUNE_20,
    JUNE_21,
    TEST_SIGNING_KEY,
    Clock,
    Sold,
    fan,
    la,
    read_tickets,
    scan_api,
)

SCAN_REDIS_URL = os.environ.get("TEST_SCAN_REDIS_URL", "redis://127.0.0.1:6379/12")
SCAN_RQ_DB = int(os.environ.get("TEST_SCAN_RQ_DB", "13"))
SCAN_DATABASE_URL = os.environ.get(
    "TEST_SCAN_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/amphi_test_scan"
)
# (section, date, seats) of the session's orders: every ticket and pass comes from these
PURCHASES = [("Orchestra Center", JUNE_19, 4), ("Lawn", JUNE_19, 1),
             ("Orchestra Center", JUNE_20, 2), ("Terrace", JUNE_21, 1)]

ScanApiOpener = Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture(scope="session")
def services() -> Iterator[devservices.Services]:
    """Overrides tests/conftest.py: this suite's own Redis db and database."""
    with own_services(SCAN_REDIS_URL, SCAN_DATABASE_URL) as found:
        yield found


@pytest.fixture(scope="session")
def settings(services: devservices.Services,
             tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Overrides tests/conftest.py. Demo payments; a fixed signing key, so that every app
    built in the session signs and verifies with the same key."""
    return Settings(
        app_env="test",
        redis_url=services.redis_url,
        rq_redis_url=redis_db_url(services.redis_url, SCAN_RQ_DB),
        database_url=services.database_url,
        hold_ttl_seconds=600,
        hold_rate_limit_per_minute=0,
        log_level="WARNING",
        log_format="text",
        outbox_dir=str(tmp_path_factory.mktemp("outbox")),
        ticket_signing_key=TEST_SIGNING_KEY,
    )


@pytest.fixture(scope="session")
def ledger_engine(settings: Settings) -> Iterator[Engine]:
    with migrated_ledger(settings.database_url) as engine:
        yield engine


async def _buy(settings: Settings, venue: VenueFixture) -> None:
    """Every purchase of PURCHASES, the way a fan makes it: hold, checkout, demo confirm."""
    async with scan_api(settings, Clock(la(JUNE_19, 12))) as client:
        for n, (section, day, seats) in enumerate(PURCHASES):
            headers = fan(settings, f"fan-{n}")
            hold = await make_hold(client, venue.sections[section], seats, headers=headers,
                                   day=day.isoformat())
            order = await checkout(client, hold["hold_id"], email=f"fan-{n}@example.com",
                                   headers=headers)
            resp = await confirm(client, order["order_id"], headers=headers)
            assert resp.status_code == 200, resp.text


@pytest.fixture(scope="session")
def sold(settings: Settings, ledger_engine: Engine) -> Sold:
    """The session's tickets: PURCHASES bought through the API, read from the ledger."""
    hold_redis = redis.Redis.from_url(settings.redis_url)
    rq_redis = redis.Redis.from_url(settings.rq_url)
    try:
        hold_redis.flushdb()
        rq_redis.flushdb()
        scripts.load_all(hold_redis)
        with ledger_engine.begin() as conn:
            conn.execute(text("TRUNCATE scans, ticket_types, stripe_events CASCADE"))
        venue = build_venue(ledger_engine, hold_redis)
        asyncio.run(_buy(settings, venue))
    finally:
        hold_redis.close()
        rq_redis.close()
    tickets = read_tickets(ledger_engine)
    expected = sum(seats for _, _, seats in PURCHASES) * 2  # each seat: ticket + pass
    assert len(tickets) == expected, tickets
    return Sold(tickets)


@pytest.fixture
def fresh(sold: Sold, ledger_engine: Engine) -> Sold:
    """The session's tickets, all `issued`, and an empty scan log."""
    with ledger_engine.begin() as conn:
        conn.execute(text("TRUNCATE scans"))
        conn.execute(text("UPDATE tickets SET status = 'issued' WHERE status <> 'issued'"))
    return sold


@pytest.fixture
def clock() -> Clock:
    """Saturday June 19 2027, 6 PM at the venue (the first festival day)."""
    return Clock(la(JUNE_19, 18))


@pytest.fixture
def open_scan_api(fresh: Sold, settings: Settings, clock: Clock) -> ScanApiOpener:
    """`async with open_scan_api(**setting_changes) as client:` (the `clock` fixture's)."""

    def opener(**changes: Any) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
        return scan_api(settings.replace(**changes), clock)

    return opener


@pytest_asyncio.fixture
async def api(open_scan_api: ScanApiOpener) -> AsyncIterator[httpx.AsyncClient]:
    async with open_scan_api() as client:
        yield client

