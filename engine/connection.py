"""Redis clients for the engine. A blocking pool: at its limit a request waits for a
connection instead of failing with "Too many connections" when every fan clicks at once."""

from __future__ import annotations

import redis
import redis.asyncio as aredis

POOL_TIMEOUT_SECONDS = 5


def async_client(url: str, *, max_connections: int) -> aredis.Redis:
    pool = aredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=POOL_TIMEOUT_SECONDS
    )
    return aredis.Redis(connection_pool=pool)


def sync_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)
