"""A suite's own storage: the suites that run servers or workers of their own (payments,
scan, ops) override the session's `services` with their own Redis db and database, and
build their ledger engine and flushed Redis the same way."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis
from sqlalchemy import Engine

from engine import scripts
from ledger.db import sync_engine
from ledger.migrate import upgrade
from runtime import devservices


@contextmanager
def own_services(redis_url: str, database_url: str) -> Iterator[devservices.Services]:
    """These addresses, or embedded servers when nothing answers there."""
    with devservices.ensure_services(redis_url, database_url,
                                     state_dir=".embedded/test") as found:
        yield found


@contextmanager
def migrated_ledger(database_url: str) -> Iterator[Engine]:
    upgrade(database_url)
    engine = sync_engine(database_url)
    yield engine
    engine.dispose()


@contextmanager
def flushed_redis(url: str) -> Iterator[redis.Redis]:
    """The hold engine's Redis db, flushed, with every script loaded."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    scripts.load_all(client)
    yield client
    client.close()
