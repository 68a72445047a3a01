"""Fixtures of the API tests: a migrated test database, a freshly set-up venue for every
test (ledger and Redis), and HTTP clients against the real app, run inside its lifespan.

The venue is what `amphi setup-venue --event-dates 2027-06-19 2027-06-20 2027-06-21` makes:
the ledger tables are truncated, `setup_venue` runs and every block is loaded into Redis
(db 15, flushed by the `redis_client` fixture of tests/conftest.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import date
from typing import Any

import httpx
import pytest
import pytest_asyncio
import redis
from sqlalchemy import Engine

from amphi.settings import Settings
from ledger.db import sync_engine
from ledger.migrate import upgrade
from tests.api._support import VenueFixture, build_venue, insert_event_date, running_api

ApiOpener = Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture(scope="session")
def migrated_database(settings: Settings) -> str:
    """The test database at the head revision (once per session)."""
    upgrade(settings.database_url)
    return settings.database_url


@pytest.fixture(scope="session")
def ledger_engine(migrated_database: str) -> Iterator[Engine]:
    engine = sync_engine(migrated_database)
    yield engine
    engine.dispose()


@pytest.fixture
def venue(ledger_engine: Engine, redis_client: redis.Redis) -> VenueFixture:
    """A clean Pacific Amphitheatre with June 19-21 2027 on sale, in the ledger and Redis."""
    return build_venue(ledger_engine, redis_client)


@pytest.fixture
def add_event_date(ledger_engine: Engine, venue: VenueFixture) -> Callable[[date], None]:
    return lambda day: insert_event_date(ledger_engine, venue, day)


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    # Most tests read counters right after a write, so the sections cache is off here;
    # tests/api/test_sections_cache.py turns it on.
    return settings.replace(log_level="WARNING", sections_cache_seconds=0)


@pytest.fixture
def open_api(venue: VenueFixture, api_settings: Settings) -> ApiOpener:
    """`async with open_api(client_addr=..., **setting_changes) as client:`"""

    def opener(
        client_addr: tuple[str, int] = ("127.0.0.1", 50000), **changes: Any
    ) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
        return running_api(api_settings.replace(**changes), client_addr)

    return opener


@pytest_asyncio.fixture
async def api(open_api: ApiOpener) -> AsyncIterator[httpx.AsyncClient]:
    async with open_api() as client:
        yield client
