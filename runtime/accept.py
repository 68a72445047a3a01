"""uvloop with batched accepts: each time the listening socket is readable, up to
ACCEPT_BATCH waiting connections are taken, as asyncio's own loop does, not one.

libuv (since 1.45, libuv/libuv#3696) accepts a single connection per event-loop turn. Under
load a turn of the API handles hundreds of ready requests and lasts milliseconds, so a burst
of new connections (the on-sale opening, a load balancer refilling its pool) waits in the
kernel's accept queue for seconds with their requests unread: with wrk opening 1,000
connections against one busy process, 400 were still queued after 2.5 s and 40-200
requests a run timed out, on the no-op endpoint too.

``amphi serve`` gives uvicorn ``loop="runtime.accept:BatchAcceptLoop"`` (a custom loop
factory, uvicorn >= 0.36). Servers made on a socket the caller opened (``create_server(
sock=...)``, as runtime/serving.py serves) accept in batches; any other is uvloop's own.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable
from typing import Any

import uvloop

log = logging.getLogger("runtime.accept")

ACCEPT_BATCH = 128  # a few milliseconds of one turn at most; the rest on the next turn
# Out of descriptors (or kernel memory): the connections stay queued in the kernel; accepting
# again at once would spin on the same error.
RETRY_SECONDS = 0.5
_RESOURCE_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class BatchAcceptServer:
    """The part of asyncio.Server uvicorn uses (close, wait_closed, sockets), serving a
    listening socket with `loop.connect_accepted_socket` for each accepted connection."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 protocol_factory: Callable[[], asyncio.BaseProtocol], backlog: int) -> None:
        self._loop = loop
        self._sock = sock
        self._factory = protocol_factory
        self._connecting: set[asyncio.Task[Any]] = set()
        self._closed = asyncio.Event()
        self.sockets = (sock,)
        sock.setblocking(False)
        sock.listen(backlog)
        loop.add_reader(sock.fileno(), self._accept)

    def _accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _address = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:  # the client gave up while queued
                continue
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRORS:
                    raise
                log.error("cannot accept connections: %s; retrying in %s s", exc, RETRY_SECONDS)
                self._loop.remove_reader(self._sock.fileno())
                self._loop.call_later(RETRY_SECONDS, self._resume)
                return
            task = self._loop.create_task(self._open(conn))
            self._connecting.add(task)
            task.add_done_callback(self._connecting.discard)

    def _resume(self) -> None:
        if not self._closed.is_set():
            self._loop.add_reader(self._sock.fileno(), self._accept)

    async def _open(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._factory, conn)
        except OSError:  # reset before its transport was made: nothing to serve
            conn.close()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def is_serving(self) -> bool:
        return not self._closed.is_set()


class BatchAcceptLoop(uvloop.Loop):
    async def create_server(self, protocol_factory: Callable[[], asyncio.BaseProtocol],
                            host: Any = None, port: Any = None, *,
                            sock: socket.socket | None = None, backlog: int = 100,
                            ssl: Any = None, **kwargs: Any) -> Any:
        if sock is None or ssl is not None or kwargs:
            return await super().create_server(protocol_factory, host, port, sock=sock,
                                               backlog=backlog, ssl=ssl, **kwargs)
        return BatchAcceptServer(self, sock, protocol_factory, backlog)
