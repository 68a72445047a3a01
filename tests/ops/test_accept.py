"""runtime/accept.py: the API's event loop takes a burst of waiting connections in one turn
(uvloop alone takes one a turn), sets TCP_NODELAY on them as uvloop does, stops accepting
when closed, and rides out running out of file descriptors."""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import socket
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
import uvloop

from runtime import accept

T = TypeVar("T")

BURST = 60  # connections waiting in the kernel's queue before the loop looks
TURNS = 10


class Counting(asyncio.Protocol):
    made: list[asyncio.Transport]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made.append(transport)  # type: ignore[arg-type]


@contextmanager
def listening() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock
    finally:
        sock.close()


@contextmanager
def connected(port: int, n: int) -> Iterator[list[socket.socket]]:
    """`n` clients whose handshakes the kernel has completed: queued, not yet accepted."""
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    try:
        yield clients
    finally:
        for client in clients:
            client.close()


def run(loop_class: Callable[[], asyncio.AbstractEventLoop],
        body: Callable[[asyncio.AbstractEventLoop], Coroutine[Any, Any, T]]) -> T:
    loop = loop_class()
    try:
        return loop.run_until_complete(body(loop))
    finally:
        loop.close()


def accepted_after_turns(loop_class: Callable[[], asyncio.AbstractEventLoop]) -> int:
    made: list[asyncio.Transport] = []
    protocol = type("P", (Counting,), {"made": made})

    async def body(loop: asyncio.AbstractEventLoop) -> int:
        with listening() as sock:
            server = await loop.create_server(protocol, sock=sock, backlog=BURST * 2)
            with connected(sock.getsockname()[1], BURST):
                for _ in range(TURNS):
                    await asyncio.sleep(0)
                count = len(made)
                for transport in made:
                    transport.close()
            server.close()
            await server.wait_closed()
            return count

    return run(loop_class, body)


def test_a_burst_of_waiting_connections_is_accepted_within_a_few_turns() -> None:
    assert accepted_after_turns(accept.BatchAcceptLoop) == BURST


def test_uvloop_alone_takes_one_connection_a_turn() -> None:
    """Why runtime/accept.py exists. If a uvloop release takes a burst at once again, this
    fails, and BatchAcceptLoop can go."""
    assert accepted_after_turns(uvloop.new_event_loop) <= TURNS


def test_accepted_connections_have_nodelay_and_a_closed_server_refuses_new_ones() -> None:
    made: list[asyncio.Transport] = []
    protocol = type("P", (Counting,), {"made": made})

    async def body(loop: asyncio.AbstractEventLoop) -> None:
        with listening() as sock:
            port = sock.getsockname()[1]
            server = await loop.create_server(protocol, sock=sock)
            assert isinstance(server, accept.BatchAcceptServer) and server.is_serving()
            with connected(port, 3):
                while len(made) < 3:
                    await asyncio.sleep(0.01)
                for transport in made:
                    raw = transport.get_extra_info("socket")
                    assert raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                    transport.close()
            server.close()
            await asyncio.wait_for(server.wait_closed(), 1)
            assert not server.is_serving()
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=1)

    run(accept.BatchAcceptLoop, body)


def test_servers_it_cannot_batch_are_uvloops_own() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> None:
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        assert not isinstance(server, accept.BatchAcceptServer)
        server.close()
        await server.wait_closed()

    run(accept.BatchAcceptLoop, body)


def test_out_of_file_descriptors_it_waits_and_then_accepts_the_rest(
        caplog: pytest.LogCaptureFixture) -> None:
    made: list[asyncio.Transport] = []
    protocol = type("P", (Counting,), {"made": made})
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    async def body(loop: asyncio.AbstractEventLoop) -> None:
        with listening() as sock:
            server = await loop.create_server(protocol, sock=sock, backlog=64)
            with connected(sock.getsockname()[1], 20):
                # Room for 5 more descriptors: the accepts after that fail with EMFILE.
                resource.setrlimit(resource.RLIMIT_NOFILE,
                                   (len(os.listdir("/proc/self/fd")) + 5, hard))
                try:
                    for _ in range(TURNS):
                        await asyncio.sleep(0)
                    stuck = len(made)
                finally:
                    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
                assert stuck < 20
                await asyncio.sleep(accept.RETRY_SECONDS + 0.3)
                assert len(made) == 20
                for transport in made:
                    transport.close()
            server.close()
            await server.wait_closed()

    with caplog.at_level(logging.ERROR, logger="runtime.accept"):
        run(accept.BatchAcceptLoop, body)
    assert "cannot accept connections" in caplog.text
