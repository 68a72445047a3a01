"""An asyncio Redis Cluster client that waits for a connection at its limit.

redis-py's asyncio ``RedisCluster`` keeps at most ``max_connections`` connections per node
and, when they are all busy, raises ``MaxConnectionsError`` at once (``ClusterNode.
acquire_connection``): under an on-sale spike of a thousand concurrent requests a small
limit fails requests, and a huge one opens a thousand connections to every node from
every API process. This subclass admits at most ``max_connections`` commands or pipelines
at a time and makes the others wait (up to ``wait_timeout`` seconds, then
``redis.ConnectionError`` as ``BlockingConnectionPool`` does). A command or a pipeline
uses at most one connection per node at a time, so no node ever needs more than
``max_connections`` connections and the per-node limit is never hit.

Work a command or pipeline does on behalf of an admitted one (cluster re-discovery, a
redirected command of a pipeline) is not admitted again: it runs in the admitted task's
context, which a context variable marks, so the gate cannot deadlock on itself.

The client also reads the cluster's slot map before its first command (see `admitted`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

_admitted: ContextVar[bool] = ContextVar("amphi_cluster_admitted", default=False)

_T = TypeVar("_T")


class WaitingRedisCluster(RedisCluster):
    def __init__(self, *args: Any, max_connections: int = 100, wait_timeout: float = 5.0,
                 **kwargs: Any) -> None:
        # passed in kwargs: as a keyword beside *args, mypy suspects *args may fill it too
        kwargs["max_connections"] = max_connections
        super().__init__(*args, **kwargs)
        self.admission = asyncio.Semaphore(max_connections)
        self.wait_timeout = wait_timeout

    async def admitted(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """Run `call()` (a coroutine function) once admitted."""
        if _admitted.get():
            return await call()
        if not self.admission.locked():
            await self.admission.acquire()  # at once: no timer needed
        else:
            try:
                async with asyncio.timeout(self.wait_timeout):
                    await self.admission.acquire()
            except TimeoutError:
                raise RedisConnectionError(
                    f"No connection available within {self.wait_timeout:g} s"
                ) from None
        token = _admitted.set(True)
        try:
            # A no-op once the slot map is known. Without it, commands sent while another
            # task reads the slot map are routed as keyless (to a random node) by
            # redis-py, answered MOVED, and the re-discovery they trigger drops
            # connections that other commands are still opening.
            await self.initialize()
            return await call()
        finally:
            _admitted.reset(token)
            self.admission.release()

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        command = super().execute_command  # bound here: super() needs the method's frame
        return await self.admitted(lambda: command(*args, **kwargs))

    def pipeline(self, transaction: Any | None = None,
                 shard_hint: Any | None = None) -> ClusterPipeline:
        if shard_hint:
            return super().pipeline(transaction, shard_hint)  # refuses it
        # redis-py's CommandsProtocol declares _event_dispatcher, which its ClusterPipeline
        # never defines: mypy thinks every ClusterPipeline abstract
        return WaitingClusterPipeline(self, transaction)  # type: ignore[abstract]


class WaitingClusterPipeline(ClusterPipeline):
    cluster_client: WaitingRedisCluster

    async def execute(self, raise_on_error: bool = True,
                      allow_redirections: bool = True) -> list[Any]:
        execute = super().execute  # bound here: super() needs the method's frame
        return await self.cluster_client.admitted(
            lambda: execute(raise_on_error, allow_redirections)
        )
