"""Shared fixtures: tests use their own Redis database index and their own PostgreSQL
database, so they never touch what a running `amphi up` holds.

TEST_REDIS_URL (default redis://127.0.0.1:6379/15) and TEST_DATABASE_URL (default
postgresql+psycopg://postgres@127.0.0.1:5432/amphi_test) override them. TEST_REDIS_URL may
name a Redis Cluster (redis+cluster://...); RQ then uses TEST_RQ_REDIS_URL. When nothing
answers there, the embedded servers of `runtime.devservices` are started for the session.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import redis
import redis.asyncio as aredis

from amphi.settings import Settings
from engine import scripts
from engine.transport.connection import async_client, sync_client
from runtime import devservices
from tests._cluster import flush_redis

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/amphi_test"
)


@pytest.fixture(scope="session")
def services() -> Iterator[devservices.Services]:
    """Redis and PostgreSQL for the whole run: the configured ones, or embedded ones."""
    with devservices.ensure_services(
        TEST_REDIS_URL, TEST_DATABASE_URL, state_dir=".embedded/test"
    ) as found:
        yield found


@pytest.fixture(scope="session")
def settings(services: devservices.Services) -> Settings:
    return Settings(
        app_env="test",
        redis_url=services.redis_url,
        # with a cluster TEST_REDIS_URL, RQ needs a plain Redis of its own
        rq_redis_url=os.environ.get("TEST_RQ_REDIS_URL", ""),
        database_url=services.database_url,
        hold_ttl_seconds=600,
        hold_rate_limit_per_minute=0,
        log_format="text",
    )


@pytest.fixture
def redis_client(settings: Settings) -> Iterator[redis.Redis]:
    """A flushed test database (every primary, on a cluster) with every script loaded."""
    client = sync_client(settings.redis_url)
    flush_redis(client)
    scripts.load_all(client)
    yield client
    client.close()


@pytest_asyncio.fixture
async def aredis_client(
    settings: Settings, redis_client: redis.Redis
) -> AsyncIterator[aredis.Redis]:
    """The engine's async client for settings.redis_url, as the API builds it."""
    client = async_client(settings.redis_url, max_connections=settings.redis_max_connections)
    yield client
    await client.aclose()
