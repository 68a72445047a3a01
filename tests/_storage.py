"""A suite's own storage: the suites that run servers or workers of their own (payments,
scan, ops) override the session's `services` with their own Redis db and database, and
build their ledger engine and flushed Redis the same way. (Each suite keeps its own
session fixtures: pytest caches a session fixture once per definition, so one defined here
would be shared by suites whose `settings` differ.) And a snapshot of a test Redis."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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


def redis_snapshot(client: redis.Redis) -> dict[bytes, Any]:
    """Every key of the test database with its value, to prove a request changed nothing."""
    snap: dict[bytes, Any] = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == b"string":
            snap[key] = client.get(key)
        elif kind == b"hash":
            snap[key] = client.hgetall(key)
        elif kind == b"zset":
            snap[key] = client.zrange(key, 0, -1, withscores=True)
        elif kind == b"set":
            snap[key] = client.smembers(key)
        else:
            snap[key] = kind
    return snap
