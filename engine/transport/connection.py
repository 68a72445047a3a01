"""Redis clients for the engine, built from a URL; every engine client is made here.

``redis://`` / ``rediss://`` (and ``unix://``) name one Redis server: a client over a
blocking pool, so that at its limit a request waits for a connection instead of failing
with "Too many connections" when every fan clicks at once.

``redis+cluster://[user:password@]host:port[,host:port...][?option=value]`` (and
``rediss+cluster://`` for TLS) names a Redis Cluster by one or more startup nodes: the
clients are ``redis.cluster.RedisCluster`` and, for the API, a ``WaitingRedisCluster``
that bounds the connections to each node and waits at that bound (see
`engine/transport/waiting_cluster.py`). A cluster has no database index: a path other than ``/``
or ``/0`` is refused.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlsplit

import hiredis
import redis
import redis.asyncio as aredis
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.cluster import ClusterNode

from amphi.redis_urls import cluster_nodes, is_cluster_url
from engine.transport.waiting_cluster import WaitingRedisCluster

POOL_TIMEOUT_SECONDS = 5
def async_client(url: str, *, max_connections: int, timeout: float = POOL_TIMEOUT_SECONDS,
                 **options: Any) -> aredis.Redis | WaitingRedisCluster:
    """The API's client. At most `max_connections` connections (on a cluster: commands in
    flight, hence connections to each node); beyond that a command waits up to `timeout`
    seconds. `options` go to every connection (socket_connect_timeout, ...)."""
    if is_cluster_url(url):
        plain, nodes = cluster_nodes(url)
        # from_url builds `cls(...)` but is annotated as returning a plain RedisCluster
        return cast(WaitingRedisCluster, WaitingRedisCluster.from_url(
            plain,
            startup_nodes=[AsyncClusterNode(host, port) for host, port in nodes[1:]],
            max_connections=max_connections,
            wait_timeout=timeout,
            **options,
        ))
    if urlsplit(url).scheme == "redis":  # TLS and unix sockets keep their own classes
        options.setdefault("connection_class", HiredisPackingConnection)
    pool = aredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=timeout, **options
    )
    return aredis.Redis.from_pool(pool)  # aclose() closes the pool too


class HiredisPackingConnection(aredis.Connection):
    """Packs commands with hiredis, in C: a hold's EVALSHA carries 18 keys and arguments,
    which redis-py's asyncio connection packs in Python (about 15 µs against 2)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        name = args[0]
        if type(name) is str and " " not in name:  # not "SCRIPT LOAD": redis-py splits it
            try:
                return [hiredis.pack_command(args)]
            except TypeError:  # None, bool, bytearray...: redis-py's rules, and errors
                pass
        return super().pack_command(*args)


def sync_client(url: str, **options: Any) -> redis.Redis | redis.RedisCluster:
    """Operator commands and workers: one request at a time, so no bound is needed. A
    cluster client reads the slot map here, so an unreachable cluster fails at once."""
    if is_cluster_url(url):
        plain, nodes = cluster_nodes(url)
        return redis.RedisCluster.from_url(
            plain,
            # redis-py leaves the synchronous ClusterNode's __init__ unannotated
            startup_nodes=[ClusterNode(host, port)  # type: ignore[no-untyped-call]
                           for host, port in nodes[1:]],
            **options,
        )
    return redis.Redis.from_url(url, **options)


def queue_client(url: str) -> redis.Redis:
    """RQ's connection: RQ needs one plain Redis (its keys are not hash-tagged)."""
    if is_cluster_url(url):
        raise ValueError("RQ needs a plain Redis URL (redis://), not a Redis Cluster URL")
    return redis.Redis.from_url(url)
