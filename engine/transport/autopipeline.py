"""Auto-pipelining: the commands that concurrent requests issue in one turn of the event
loop go to Redis together, as one pipeline on one connection.

When every fan clicks at once, an API process has hundreds of holds in flight. Sent one
by one, each EVALSHA takes a connection from the pool (a lock, a condition, a timer), a
write and a read of its own, and the client's share of a hold is larger than the Lua
script's. Queued and flushed once per loop turn, a hundred holds cost one pool checkout,
one write and one read. Nothing changes for Redis or for correctness: each script still
runs atomically on its own, in the order it was queued, and a reply (or error) goes to its
caller only. The same technique as ioredis's ``enableAutoPipelining``.

On a plain TCP Redis the batches go over one connection of their own, with replies
matched to callers in order (engine/transport/multiplexed.py); elsewhere (a cluster, TLS, a unix
socket) each batch is a redis-py pipeline on a pooled connection, which also routes a
cluster's commands by slot.

A caller that is cancelled after queueing does not take its command back: like a command
cancelled while its reply was awaited, Redis may still run it (every hot-path script is
idempotent for a retry, see `engine.holds.new_hold_id`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import redis.asyncio as aredis

from engine.transport.multiplexed import Call, Multiplexed, settle

MAX_BATCH = 256  # commands in one redis-py pipeline; more in one turn go as several
# On the multiplexed connection a turn's commands are also written whenever this many are
# queued, so that Redis starts on them while the process still handles the turn's other
# requests. Written only once a turn, the process and Redis took turns waiting for each
# other. A/B with wrk, 2 API processes, 100 connections, holds/s: at 16, 9,183 / 8,670 /
# 8,864 against 8,512 / 8,152 / 8,793 once a turn; at 8 about as well, at 4 worse. With
# one process at 1,000 connections the difference was inside the noise (6,300-7,900).
EARLY_WRITE = 16


class AutoPipeline:
    """Queues commands and flushes them once per event-loop turn (and, on the multiplexed
    connection, every EARLY_WRITE commands) as one write or redis-py pipelines."""

    def __init__(self, client: aredis.Redis | aredis.RedisCluster, *,
                 observe: Callable[[int], None] | None = None, multiplex: bool = True) -> None:
        self.client = client
        # None: redis-py pipelines (a cluster, TLS, a unix socket, or multiplex=False)
        self.connection = Multiplexed.for_client(client) if multiplex else None
        self._observe = observe  # told each flushed batch's size (a metric)
        self._queue: list[Call] = []
        self._sending: set[asyncio.Task[None]] = set()  # strong references until done

    def execute_command(self, *command: Any) -> asyncio.Future[Any]:
        """Queue `command` (as for ``client.execute_command``); await the reply."""
        loop = asyncio.get_running_loop()
        reply = loop.create_future()
        self._queue.append((command, reply))
        queued = len(self._queue)
        if queued == 1:
            loop.call_soon(self._flush)
        elif queued >= EARLY_WRITE and self.connection is not None:
            self._flush()
        return reply

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> asyncio.Future[Any]:
        return self.execute_command("EVALSHA", sha, numkeys, *keys_and_args)

    def _flush(self) -> None:
        queued, self._queue = self._queue, []
        if not queued:  # written early (EARLY_WRITE)
            return
        if self.connection is not None:
            if self._observe is not None:
                self._observe(len(queued))
            self.connection.send(queued)
            return
        for start in range(0, len(queued), MAX_BATCH):
            task = asyncio.get_running_loop().create_task(
                self._send(queued[start:start + MAX_BATCH]))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[Call]) -> None:
        if self._observe is not None:
            self._observe(len(batch))
        # A raw command, as engine.scripts.arun_each sends it: redis-py's cluster pipeline
        # routes it by its keys' slot.
        pipe = self.client.pipeline(transaction=False)
        for command, _ in batch:
            pipe.execute_command(*command)
        try:
            replies = await pipe.execute(raise_on_error=False)
        except asyncio.CancelledError:  # the loop is shutting down
            for _, reply in batch:
                reply.cancel()
            raise
        except Exception as failed:  # connection lost, no connection free in time, ...
            for _, reply in batch:
                settle(reply, failed)
            return
        for (_, reply), result in zip(batch, replies, strict=True):
            settle(reply, result)

    async def aclose(self) -> None:
        """Wait for the batches already sent (at shutdown, before the client closes)."""
        while self._queue or self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
            await asyncio.sleep(0)
        if self.connection is not None:
            await self.connection.aclose()
