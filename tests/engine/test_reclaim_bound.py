"""The block's due_ms (meta): no active hold expires before it, so create_hold reads the holds
zset only once it has passed. It must never be late, or an expired hold would keep its seats
until the sweeper came by."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio as aredis

from amphi import errors, keys
from engine.hold_types import RECLAIM_LIMIT
from tests.engine._support import (
    assert_block_ok,
    block_state,
    block_violations,
    force_expire,
    load_ga,
    load_reserved,
    make_engine,
    meta,
    redis_now_ms,
)


def due(client: redis.Redis, block: keys.BlockKeys) -> int | None:
    value = meta(client, block).get("due_ms")
    return None if value is None else int(value)


def earliest(client: redis.Redis, block: keys.BlockKeys) -> int:
    return min(block_state(client, block).active.values())


async def test_holds_of_mixed_lifetimes_keep_it_at_the_earliest_expiry(
    redis_client: redis.Redis, aredis_client: aredis.Redis
) -> None:
    long = make_engine(aredis_client, ttl_seconds=600)
    short = make_engine(aredis_client, ttl_seconds=1)
    block = load_reserved(redis_client, 4, 10)
    first = await long.create(block, 2, owner="", client="a")
    assert due(redis_client, block) == first.expires_ms
    brief = await short.create(block, 2, owner="", client="b")
    assert due(redis_client, block) == brief.expires_ms < first.expires_ms
    await long.create(block, 2, owner="", client="c")
    assert due(redis_client, block) == brief.expires_ms  # a later hold does not raise it
    assert_block_ok(redis_client, block)

    while redis_now_ms(redis_client) <= brief.expires_ms:
        await asyncio.sleep(0.05)
    await long.create(block, 1, owner="", client="d")  # the hot path reclaims the brief one
    assert (await long.get(brief.hold_id)).status == "expired"
    assert meta(redis_client, block)["expired"] == "1"
    assert due(redis_client, block) == earliest(redis_client, block) == first.expires_ms
    assert_block_ok(redis_client, block)


async def test_more_expired_holds_than_one_call_reclaims(
    redis_client: redis.Redis, aredis_client: aredis.Redis
) -> None:
    """A call that stops at the reclaim limit leaves a bound that has passed already, so the
    next call goes on reclaiming."""
    engine = make_engine(aredis_client)
    block = load_ga(redis_client, 2 * RECLAIM_LIMIT)
    made = [await engine.create(block, 1, owner="", client=f"fan-{i}")
            for i in range(RECLAIM_LIMIT + 5)]
    for hold in made:
        force_expire(redis_client, block, hold.hold_id)

    await engine.create(block, 1, owner="", client="next-1")
    assert meta(redis_client, block)["expired"] == str(RECLAIM_LIMIT)
    assert due(redis_client, block) <= redis_now_ms(redis_client)
    await engine.create(block, 1, owner="", client="next-2")
    assert meta(redis_client, block)["expired"] == str(RECLAIM_LIMIT + 5)
    assert due(redis_client, block) == earliest(redis_client, block)
    assert_block_ok(redis_client, block)


async def test_an_unknown_bound_reads_the_holds(
    redis_client: redis.Redis, aredis_client: aredis.Redis
) -> None:
    """Without due_ms (a block rebuilt by reconcile --fix) the next hold reads the holds zset,
    reclaims what has expired, and sets the bound again."""
    engine = make_engine(aredis_client)
    block = load_ga(redis_client, 10)
    old = await engine.create(block, 4, owner="", client="a")
    force_expire(redis_client, block, old.hold_id)
    redis_client.hdel(block.meta, "due_ms")

    new = await engine.create(block, 8, owner="", client="b")  # only fits once `old` is gone
    assert (await engine.get(old.hold_id)).status == "expired"
    assert due(redis_client, block) == new.expires_ms
    assert_block_ok(redis_client, block)


@pytest.mark.parametrize("backlog", [1, 4, 5, 12])
async def test_one_hold_reclaims_a_backlog_and_bounds_what_is_left(
    redis_client: redis.Redis, aredis_client: aredis.Redis, backlog: int
) -> None:
    """However many have expired (under the limit), one call reclaims them all, reading the
    holds zset in more than one look if it must, and the bound is the first live expiry."""
    engine = make_engine(aredis_client)
    block = load_ga(redis_client, 100)
    gone = [await engine.create(block, 1, owner="", client=f"old-{i}") for i in range(backlog)]
    live = [await engine.create(block, 2, owner="", client=f"live-{i}") for i in range(2)]
    for hold in gone:
        force_expire(redis_client, block, hold.hold_id)

    await engine.create(block, 1, owner="", client="next")
    assert meta(redis_client, block)["expired"] == str(backlog)
    assert meta(redis_client, block)["held"] == "5"
    assert due(redis_client, block) == live[0].expires_ms == earliest(redis_client, block)
    assert_block_ok(redis_client, block)


async def test_fans_holding_concurrently_get_expired_seats_back_without_the_sweeper(
    redis_client: redis.Redis, aredis_client: aredis.Redis
) -> None:
    """Only the hot path reclaims here: for 2.5 s, 30 fans hold 2 seats for 1 s again and
    again in a 20-seat block, while a thread takes MULTI snapshots of it. Seats come back
    only if due_ms lets the holds read the zset once their second has passed; no snapshot
    may show a seat in two holds, counters that do not add up, or a late due_ms."""
    short = make_engine(aredis_client, ttl_seconds=1)
    block = load_reserved(redis_client, 2, 10)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 2.5
    made: list[str] = []
    broken: list[str] = []

    async def fan(i: int) -> None:
        while loop.time() < deadline:
            try:
                made.append((await short.create(block, 2, owner="", client=f"f{i}")).hold_id)
            except (errors.SoldOut, errors.NoAdjacentSeats, errors.TooManyHolds):
                await asyncio.sleep(0.02)

    def watcher() -> None:
        while loop.time() < deadline:
            broken.extend(block_violations(redis_client, block))

    await asyncio.gather(asyncio.to_thread(watcher), *(fan(i) for i in range(30)))
    assert not broken, broken[:5]
    assert len(made) > 20  # more than the 10 holds the block fits at once
    expired = int(meta(redis_client, block)["expired"])
    active = len(block_state(redis_client, block).active)
    assert expired + active == len(made)  # every hold either expired or is still live
    assert_block_ok(redis_client, block)
