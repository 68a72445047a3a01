"""The auto-pipeline (engine/transport/autopipeline.py) on a real Redis and a real cluster: commands
of one event-loop turn share round trips, each caller gets its own reply or error, in the
order they were queued, and a failure or a cancelled caller wedges nothing. On the single
Redis both transports run: the multiplexed connection and redis-py pipelines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aredis
from redis.exceptions import NoScriptError, ResponseError

from engine.transport.autopipeline import EARLY_WRITE, MAX_BATCH, AutoPipeline
from engine.transport.connection import async_client
from tests._servers import free_port, private_redis
from tests.engine._support import load_reserved, make_engine, meta

# Each call increments its own counter key and answers (its argument, the count): replies
# must reach their own caller, and one key's commands run in the order queued.
COUNT = "return {ARGV[1], redis.call('INCR', KEYS[1])}"
FAIL = "return redis.error_reply('boom ' .. ARGV[1])"


def counter(i: int) -> str:
    return f"autopipeline:{{c{i % 7}}}"  # 7 slots: on a cluster, several nodes


class Batches(list[int]):
    """Sizes of the flushed batches, as the API's metric sees them."""

    def __call__(self, size: int) -> None:
        self.append(size)


def written(transport: str, *turns: int) -> list[int]:
    """The batches that turns of so many commands make: redis-py pipelines of up to
    MAX_BATCH, or on the multiplexed connection a write every EARLY_WRITE commands."""
    size = MAX_BATCH if transport == "pipelines" else EARLY_WRITE
    return [min(size, n - start) for n in turns for start in range(0, n, size)]


@pytest.fixture
def batches() -> Batches:
    return Batches()


@pytest.fixture(params=["multiplexed", "pipelines"])
def transport(request: pytest.FixtureRequest, redis_backend: str) -> str:
    if request.param == "multiplexed" and redis_backend == "cluster":
        pytest.skip("a cluster's batches always go as redis-py pipelines")
    return str(request.param)


@pytest.fixture
async def pipeline(aredis_client: aredis.Redis, batches: Batches,
                   transport: str) -> AsyncIterator[AutoPipeline]:
    """An auto-pipeline of the engine's client for the backend, its batches recorded."""
    pipeline = AutoPipeline(aredis_client, observe=batches, multiplex=transport == "multiplexed")
    assert (pipeline.connection is not None) == (transport == "multiplexed")
    yield pipeline
    await pipeline.aclose()


@pytest.fixture
def sha(redis_client: redis.Redis) -> str:
    """COUNT, loaded (on every primary of a cluster)."""
    return redis_client.script_load(COUNT)


async def test_one_turns_commands_share_round_trips_and_keep_their_order(
    redis_client: redis.Redis, pipeline: AutoPipeline, batches: Batches, sha: str,
    transport: str
) -> None:
    replies = await asyncio.gather(*(pipeline.evalsha(sha, 1, counter(i), f"call-{i}")
                                     for i in range(200)))
    assert batches == written(transport, 200)  # queued in one turn
    assert [r[0] for r in replies] == [f"call-{i}".encode() for i in range(200)]
    for key in range(7):  # each key's INCRs ran in the order their calls were queued
        assert [r[1] for i, r in enumerate(replies) if i % 7 == key] == list(
            range(1, len(range(key, 200, 7)) + 1))


async def test_more_than_a_batch_goes_as_several(
    redis_client: redis.Redis, pipeline: AutoPipeline, batches: Batches, sha: str,
    transport: str
) -> None:
    total = 2 * MAX_BATCH + 10
    replies = await asyncio.gather(*(pipeline.evalsha(sha, 1, counter(i), str(i))
                                     for i in range(total)))
    assert sorted(batches) == sorted(written(transport, total))
    assert [int(r[0]) for r in replies] == list(range(total))
    assert sum(int(redis_client.get(counter(k))) for k in range(7)) == total


async def test_calls_in_later_turns_go_in_later_batches(
    redis_client: redis.Redis, pipeline: AutoPipeline, batches: Batches, sha: str,
    transport: str
) -> None:
    replies = []
    for wave in range(4):  # each wave queued once the one before has its replies
        replies += await asyncio.gather(*(pipeline.evalsha(sha, 1, counter(i), str(i))
                                          for i in range(wave * 10, wave * 10 + 10)))
    assert [int(r[0]) for r in replies] == list(range(40))
    assert batches == written(transport, 10, 10, 10, 10)


async def test_an_error_reaches_its_own_caller_only(
    redis_client: redis.Redis, pipeline: AutoPipeline, batches: Batches, sha: str,
    transport: str
) -> None:
    count, fail = sha, redis_client.script_load(FAIL)
    calls = []
    for i in range(30):
        if i % 3 == 1:
            calls.append(pipeline.evalsha(fail, 1, counter(i), str(i)))
        elif i % 3 == 2:
            calls.append(pipeline.evalsha("0" * 40, 1, counter(i), str(i)))  # no such script
        else:
            calls.append(pipeline.evalsha(count, 1, counter(i), str(i)))
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert batches == written(transport, 30)
    for i, result in enumerate(results):
        if i % 3 == 1:
            assert isinstance(result, ResponseError) and str(result) == f"boom {i}"
        elif i % 3 == 2:
            assert isinstance(result, NoScriptError)
        else:
            assert result[0] == str(i).encode()


async def test_a_cancelled_caller_leaves_the_others_their_replies(
    redis_client: redis.Redis, pipeline: AutoPipeline, sha: str
) -> None:
    key = counter(0)
    calls = [asyncio.ensure_future(pipeline.evalsha(sha, 1, key, str(i))) for i in range(10)]
    calls[3].cancel()  # before the batch is flushed
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(results[3], asyncio.CancelledError)
    assert [r[0] for i, r in enumerate(results) if i != 3] == [
        str(i).encode() for i in range(10) if i != 3]
    # Redis still ran the cancelled call, as it may run any command whose caller gave up
    assert int(redis_client.get(key)) == 10


@pytest.mark.parametrize("multiplex", [True, False], ids=["multiplexed", "pipelines"])
async def test_a_lost_server_fails_every_waiting_caller_and_wedges_nothing(
    tmp_path: Path, multiplex: bool
) -> None:
    port = free_port()  # nothing listens yet
    client = async_client(f"redis://127.0.0.1:{port}/0", max_connections=4,
                          socket_connect_timeout=1)
    pipeline = AutoPipeline(client, multiplex=multiplex)

    async def twenty(*command: str) -> list[object]:
        return await asyncio.gather(*(pipeline.execute_command(*command) for _ in range(20)),
                                    return_exceptions=True)

    try:
        down = await twenty("PING")
        assert all(isinstance(r, redis.ConnectionError) for r in down), down
        with private_redis(tmp_path, port=port):
            assert sorted(await twenty("INCR", "n")) == list(range(1, 21))
        gone = await twenty("PING")  # the server stopped under an open connection
        assert all(isinstance(r, redis.ConnectionError) for r in gone), gone
        with private_redis(tmp_path, port=port):  # back (empty): the next command reconnects
            assert sorted(await twenty("INCR", "n")) == list(range(1, 21))
            await pipeline.aclose()
    finally:
        await client.aclose()


async def test_aclose_waits_for_what_was_queued(
    redis_client: redis.Redis, pipeline: AutoPipeline, sha: str
) -> None:
    calls = [asyncio.ensure_future(pipeline.evalsha(sha, 1, counter(0), "x"))
             for _ in range(50)]
    await pipeline.aclose()
    assert all(c.done() for c in calls)
    assert int(redis_client.get(counter(0))) == 50


@pytest.mark.parametrize("autopipeline", [False, True], ids=["commands", "autopipelined"])
async def test_holds_through_either_path_answer_alike(
    redis_client: redis.Redis, aredis_client: aredis.Redis, autopipeline: bool
) -> None:
    """The engine's switch (REDIS_AUTOPIPELINE): a spike of holds in one block makes the same
    holds either way, and the block adds up."""
    engine = make_engine(aredis_client, max_active=100, autopipeline=autopipeline)
    block = load_reserved(redis_client, 10, 10)
    holds = await asyncio.gather(*(engine.create(block, 2, owner=f"u{i}", client=f"u{i}")
                                   for i in range(50)), return_exceptions=True)
    made = [h for h in holds if not isinstance(h, BaseException)]
    assert len(made) == 50
    seats = [s for h in made for s in h.seats]
    assert len(set(seats)) == 100
    assert meta(redis_client, block)["held"] == "100"
