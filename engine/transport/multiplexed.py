"""One connection to a single Redis that all of an API process's hot-path commands share.

Redis answers the commands of a connection in the order they were sent, so the replies
can be handed to their callers in that order from a queue of futures: ioredis's and
hiredis's design. The auto-pipeline (engine/transport/autopipeline.py) writes each loop turn's
commands here in one write. Against a redis-py pipeline on a pooled connection this saves
the client about 12 µs of CPU a command (measured: 4 µs against 16 µs for a batch of 17
EVALSHA): no pool checkout, no coroutine and no timeout context a reply, only the hiredis
reader parsing what arrives.

Only plain TCP Redis (``redis://``) is served this way; TLS, unix sockets and clusters go
through redis-py pipelines (`Multiplexed.for_client` answers None). Failures look as they
do from redis-py: a lost connection fails every waiting caller with ``ConnectionError``,
a server silent for ``reply_timeout`` seconds with ``TimeoutError``; the next command
connects again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterable
from typing import Any

import hiredis
import redis.asyncio as aredis
from redis import exceptions as redis_errors
from redis._parsers import BaseParser  # redis-py's error-reply classes (NoScriptError, ...)

Command = tuple[Any, ...]
Call = tuple[Command, "asyncio.Future[Any]"]

DEFAULT_REPLY_TIMEOUT = 5.0  # redis-py's default socket timeout


def settle(waiter: asyncio.Future[Any], reply: Any) -> None:
    """Hand `reply` to its caller, an error reply as the exception it raises; a cancelled
    caller's reply is dropped."""
    if waiter.done():
        return
    if isinstance(reply, Exception):
        waiter.set_exception(reply)
    else:
        waiter.set_result(reply)


class Multiplexed(asyncio.Protocol):
    """A lazily opened connection; `send` queues commands and their reply futures."""

    def __init__(self, host: str, port: int, *, db: int = 0, username: str | None = None,
                 password: str | None = None, connect_timeout: float | None = None,
                 reply_timeout: float = DEFAULT_REPLY_TIMEOUT) -> None:
        self.address = f"{host}:{port}"
        self._host, self._port, self._connect_timeout = host, port, connect_timeout
        self.reply_timeout = reply_timeout
        self.handshake: list[Command] = []
        if password:
            self.handshake.append(("AUTH", username, password) if username
                                   else ("AUTH", password))
        if db:
            self.handshake.append(("SELECT", db))
        self._transport: asyncio.Transport | None = None  # while the socket is open
        self._ready = False  # open and through the handshake: commands may be written
        self._reader = hiredis.Reader(replyError=BaseParser.parse_error)
        self._waiting: deque[asyncio.Future[Any]] = deque()  # written, no reply read yet
        self._backlog: list[Call] = []  # queued until the connection is ready
        self._connecting: asyncio.Task[None] | None = None
        self._replies = 0  # read so far: the watchdog's measure of progress
        self._watchdog: asyncio.TimerHandle | None = None
        self._closing_because: Exception | None = None  # why we abort the connection

    @classmethod
    def for_client(cls, client: Any) -> Multiplexed | None:
        """A connection to the server of `client`'s pool, with its address, database and
        credentials; None unless that is a plain TCP Redis speaking RESP2."""
        if not isinstance(client, aredis.Redis):
            return None
        pool = client.connection_pool
        kwargs = pool.connection_kwargs
        if (not issubclass(pool.connection_class, aredis.Connection)
                or issubclass(pool.connection_class, aredis.SSLConnection)
                or kwargs.get("credential_provider") is not None
                or str(kwargs.get("protocol") or 2) != "2"):
            return None
        timeout = kwargs.get("socket_timeout")
        return cls(kwargs.get("host", "localhost"), int(kwargs.get("port", 6379)),
                   db=int(kwargs.get("db") or 0), username=kwargs.get("username"),
                   password=kwargs.get("password"),
                   connect_timeout=kwargs.get("socket_connect_timeout") or timeout,
                   reply_timeout=timeout or DEFAULT_REPLY_TIMEOUT)

    @property
    def idle(self) -> bool:
        """Nothing queued, being connected or awaiting its reply."""
        return not (self._waiting or self._backlog or self._connecting)

    # -- sending ----------------------------------------------------------------------------
    def send(self, calls: list[Call]) -> None:
        """Write `calls` now, or as soon as the connection is ready."""
        if self._ready:
            self._write(calls)
            return
        self._backlog.extend(calls)
        if self._connecting is None:
            self._connecting = asyncio.get_running_loop().create_task(self._connect())

    def _write(self, calls: Iterable[Call]) -> None:
        assert self._transport is not None
        packed = []
        for command, reply in calls:
            try:
                packed.append(hiredis.pack_command(command))
            except TypeError as bad:  # None, bool, ...: redis-py refuses them too
                settle(reply, redis_errors.DataError(f"invalid argument in {command[0]!r}: {bad}"))
                continue
            self._waiting.append(reply)
        if packed:
            self._transport.write(b"".join(packed))
            if self._watchdog is None:
                self._arm_watchdog()

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            try:
                async with asyncio.timeout(self._connect_timeout):
                    await loop.create_connection(lambda: self, self._host, self._port)
            except OSError as failed:  # TimeoutError included
                raise redis_errors.ConnectionError(
                    f"Error connecting to {self.address}: {failed}") from None
            replies = [loop.create_future() for _ in self.handshake]
            self._write(zip(self.handshake, replies, strict=True))
            # A refused AUTH or SELECT fails the backlog with its error; gather also takes
            # the error of the replies after it (a SELECT after a refused AUTH is refused
            # too), which asyncio would otherwise log as never retrieved.
            await asyncio.gather(*replies)
        except BaseException as failed:
            if self._transport is not None:
                self._transport.abort()
            calls, self._backlog = self._backlog, []
            error = (failed if isinstance(failed, Exception)
                     else redis_errors.ConnectionError("connection closed"))
            for _, reply in calls:
                settle(reply, error)
            if not isinstance(failed, Exception):
                raise  # cancelled: the loop is shutting down
            return
        finally:
            self._connecting = None
        self._ready = True
        calls, self._backlog = self._backlog, []
        self._write(calls)

    # -- replies ----------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._closing_because = None

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (reply := self._reader.gets()) is not False:
            self._replies += 1
            if not self._waiting:  # an answer to nothing: the stream cannot be trusted
                self._abort(redis_errors.ConnectionError(f"unexpected reply from {self.address}"))
                return
            settle(self._waiting.popleft(), reply)

    def connection_lost(self, exc: Exception | None) -> None:
        error = self._closing_because or redis_errors.ConnectionError(
            f"Connection to {self.address} lost" + (f": {exc}" if exc else ""))
        self._transport, self._ready = None, False
        self._reader = hiredis.Reader(replyError=BaseParser.parse_error)
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        waiting, self._waiting = self._waiting, deque()
        for waiter in waiting:
            settle(waiter, error)

    def _abort(self, because: Exception) -> None:
        """Close at once; connection_lost fails the waiting callers with `because`."""
        if self._transport is not None:
            self._closing_because = because
            self._transport.abort()

    # -- a server that stops answering ------------------------------------------------------
    def _arm_watchdog(self) -> None:
        loop = asyncio.get_running_loop()
        self._watchdog = loop.call_later(self.reply_timeout, self._check, self._replies)

    def _check(self, replies_then: int) -> None:
        """Every `reply_timeout` while replies are awaited: none read since the last look
        means the server (or the network) is stuck; give up on this connection."""
        self._watchdog = None
        if not self._waiting:
            return
        if self._replies == replies_then:
            self._abort(redis_errors.TimeoutError(
                f"Timeout reading from {self.address}: no reply in {self.reply_timeout} s"))
        else:
            self._arm_watchdog()

    async def aclose(self) -> None:
        """Wait for the replies to everything sent or queued, then close."""
        if not self.idle:
            # Replies come in order: once this one is in, so are all before it.
            last = asyncio.get_running_loop().create_future()
            self.send([(("PING",), last)])
            with contextlib.suppress(redis_errors.RedisError):
                await last
        if self._transport is not None:
            self._transport.close()
