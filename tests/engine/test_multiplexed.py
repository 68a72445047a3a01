"""The multiplexed connection (engine/transport/multiplexed.py) where it differs from a redis-py
pooled connection: which clients get one, the handshake (password, database), a server
that stops answering or hangs up mid-batch, and an argument Redis cannot be sent. Its
everyday behaviour (order, errors, cancellation, a lost server) is tested with the
auto-pipeline's in test_autopipeline.py."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import redis
import redis.asyncio as aredis
from redis import exceptions as redis_errors

from engine.transport.connection import async_client
from engine.transport.multiplexed import Multiplexed
from tests._servers import private_redis


async def call(connection: Multiplexed, *command: object) -> object:
    reply = asyncio.get_running_loop().create_future()
    connection.send([(command, reply)])
    return await reply


def test_only_a_plain_tcp_redis_is_multiplexed() -> None:
    plain = async_client("redis://:secret@10.0.0.7:6390/4", max_connections=2,
                         socket_timeout=2.5)
    connection = Multiplexed.for_client(plain)
    assert connection is not None
    assert connection.address == "10.0.0.7:6390"
    assert connection.handshake == [("AUTH", "secret"), ("SELECT", 4)]
    assert connection.reply_timeout == 2.5
    named = Multiplexed.for_client(async_client("redis://fan:pw@h:1/0", max_connections=2))
    assert named is not None and named.handshake == [("AUTH", "fan", "pw")]
    for url in ("rediss://h:6380/0", "unix:///tmp/redis.sock"):
        assert Multiplexed.for_client(async_client(url, max_connections=2)) is None, url
    cluster = async_client("redis+cluster://127.0.0.1:7000", max_connections=2)
    assert Multiplexed.for_client(cluster) is None
    resp3 = aredis.Redis(host="h", protocol=3)
    assert Multiplexed.for_client(resp3) is None


async def test_password_and_database_are_sent_before_any_command(tmp_path: Path) -> None:
    with private_redis(tmp_path) as port:
        admin = redis.Redis(port=port)
        admin.config_set("requirepass", "s3cret")
        admin = redis.Redis(port=port, password="s3cret", db=3)
        good = Multiplexed.for_client(aredis.Redis.from_url(
            f"redis://:s3cret@127.0.0.1:{port}/3"))
        assert good is not None
        replies = await asyncio.gather(*(call(good, "INCR", "n") for _ in range(10)))
        assert sorted(replies) == list(range(1, 11))
        assert admin.get("n") == b"10"  # in database 3
        await good.aclose()

        wrong = Multiplexed.for_client(aredis.Redis.from_url(
            f"redis://:wrong@127.0.0.1:{port}/3"))
        assert wrong is not None
        refused = await asyncio.gather(*(call(wrong, "INCR", "n") for _ in range(5)),
                                       return_exceptions=True)
        assert all(isinstance(r, redis_errors.AuthenticationError) for r in refused), refused
        assert admin.get("n") == b"10"
        await wrong.aclose()


async def test_a_refused_handshake_leaves_no_error_unretrieved(tmp_path: Path) -> None:
    """After a refused AUTH the SELECT is refused too; its error is taken, not left for
    asyncio to log as 'Future exception was never retrieved' on every reconnect."""
    logged: list[str] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, ctx: logged.append(ctx["message"]))
    with private_redis(tmp_path) as port:
        redis.Redis(port=port).config_set("requirepass", "s3cret")
        wrong = Multiplexed("127.0.0.1", port, password="wrong", db=3)
        for _ in range(3):
            with pytest.raises(redis_errors.AuthenticationError):
                await call(wrong, "PING")
        await wrong.aclose()
        del wrong
        gc.collect()
        await asyncio.sleep(0)
    assert logged == []


@asynccontextmanager
async def fake_server(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[int]:
    """A TCP server on a free loopback port that answers as `handle` does."""
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def test_a_server_that_stops_answering_times_out_and_the_next_command_reconnects(
) -> None:
    connections = []

    async def answer_first_connection_never(reader: asyncio.StreamReader,
                                            writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        while data := await reader.read(65536):
            if len(connections) > 1:  # the second connection: PONG to every PING
                writer.write(b"+PONG\r\n" * data.count(b"PING"))

    async with fake_server(answer_first_connection_never) as port:
        connection = Multiplexed("127.0.0.1", port, reply_timeout=0.2)
        started = asyncio.get_running_loop().time()
        stuck = await asyncio.gather(*(call(connection, "PING") for _ in range(3)),
                                     return_exceptions=True)
        waited = asyncio.get_running_loop().time() - started
        assert all(isinstance(r, redis_errors.TimeoutError) for r in stuck), stuck
        assert 0.2 <= waited < 2  # one or two watchdog periods
        assert await call(connection, "PING") == b"PONG"
        assert len(connections) == 2
        await connection.aclose()


async def test_a_server_hanging_up_mid_batch_fails_the_unanswered_callers_only() -> None:
    async def answer_two_then_hang_up(reader: asyncio.StreamReader,
                                      writer: asyncio.StreamWriter) -> None:
        data = b""
        while data.count(b"PING") < 5:
            data += await reader.read(65536)
        writer.write(b"+PONG\r\n+PONG\r\n")
        await writer.drain()
        writer.close()

    async with fake_server(answer_two_then_hang_up) as port:
        connection = Multiplexed("127.0.0.1", port)
        replies = await asyncio.gather(*(call(connection, "PING") for _ in range(5)),
                                       return_exceptions=True)
        assert replies[:2] == [b"PONG", b"PONG"]
        assert all(isinstance(r, redis_errors.ConnectionError) for r in replies[2:]), replies
        await connection.aclose()


async def test_an_argument_redis_cannot_take_fails_its_caller_only(
    redis_client: redis.Redis, aredis_client: aredis.Redis, redis_backend: str
) -> None:
    if redis_backend == "cluster":
        pytest.skip("a cluster is not multiplexed")
    connection = Multiplexed.for_client(aredis_client)
    assert connection is not None
    replies = await asyncio.gather(
        call(connection, "SET", "multiplexed:a", "1"),
        call(connection, "SET", "multiplexed:b", None),
        call(connection, "GET", "multiplexed:a"),
        return_exceptions=True,
    )
    assert replies[0] is True or replies[0] == b"OK"
    assert isinstance(replies[1], redis_errors.DataError)
    assert replies[2] == b"1"
    assert redis_client.exists("multiplexed:b") == 0
    await connection.aclose()
