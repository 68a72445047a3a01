"""The block's cumulative `expired` counter (meta hash, read by the metrics): every hold that
expires adds one, whichever script expires it, and nothing else moves it."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio as aredis

from amphi import errors, keys
from engine import blocks
from tests.engine._support import (
    assert_block_ok,
    force_expire,
    load_ga,
    load_reserved,
    make_engine,
    meta,
    reserved_spec,
)


def expired(client: redis.Redis, block: keys.BlockKeys) -> int:
    return int(meta(client, block).get("expired", 0))


async def test_reclaim_on_the_hot_path_counts_each_expired_hold(
    redis_client: redis.Redis, aredis_client: aredis.Redis
) -> None:
    engine = make_engine(aredis_client)
    block = load_reserved(redis_client, 4, 10)
    a = await engine.create(block, 2, owner="u1", client="u1")
    b = await engine.create(block, 3, owner="", client="guest:1")
    live = await engine.create(block, 1, owner="u2", client="u2")
    # holds that are made, and a release, are not expiries
    released = await engine.create(block, 1, owner="u3", client="u3")
    await engine.release(released.hold_id, requester="u3")
    assert "expired" not in meta(redis_client, block)

    force_expire(redis_client, block, a.hold_id)
    force_expire(redis_client, block, b.hold_id)
    await engine.create(block, 1, owner="u4", client="u4")  # reclaims both first
    assert expired(redis_client, block) == 2
    assert (await engine.get(a.hold_id)).status == "expired"
    assert (await engine.get(live.hold_id)).status == "active"

    await engine.create(block, 1, owner="u5", client="u5")  # nothing left to expire
    assert expired(redis_client, block) == 2
    assert_block_ok(redis_client, block)


async def test_sweeper_and_release_count_their_expiries(
    redis_client: redis.Redis, aredis_client: aredis.Redis
) -> None:
    engine = make_engine(aredis_client)
    ga = load_ga(redis_client, 50)
    swept = await engine.create(ga, 4, owner="u1", client="u1")
    force_expire(redis_client, ga, swept.hold_id)
    assert blocks.sweep(redis_client) == 4
    assert expired(redis_client, ga) == 1
    assert blocks.sweep(redis_client) == 0
    assert expired(redis_client, ga) == 1

    # released after its expiry, before any reclaim: it is expired, and counted once
    late = await engine.create(ga, 2, owner="u2", client="u2")
    force_expire(redis_client, ga, late.hold_id)
    with pytest.raises(errors.HoldNotActive):
        await engine.release(late.hold_id, requester="u2")
    assert expired(redis_client, ga) == 2
    blocks.sweep(redis_client)
    assert expired(redis_client, ga) == 2
    assert_block_ok(redis_client, ga)


async def test_counter_survives_a_block_refresh(
    redis_client: redis.Redis, aredis_client: aredis.Redis
) -> None:
    """load_block's refresh (price, on-sale flag) keeps the counter, as it keeps the holds."""
    engine = make_engine(aredis_client)
    block = load_reserved(redis_client, 2, 10)
    hold = await engine.create(block, 2, owner="u1", client="u1")
    force_expire(redis_client, block, hold.hold_id)
    blocks.counts(redis_client, block)
    assert expired(redis_client, block) == 1
    assert blocks.load_block(redis_client, reserved_spec(block, 2, 10)) == "refreshed"
    assert expired(redis_client, block) == 1


async def test_racing_reclaims_count_each_expiry_once(
    redis_client: redis.Redis, aredis_client: aredis.Redis
) -> None:
    """120 expired holds, then, all at once: 60 new holds (each reclaims first), releases
    of 40 of the expired holds (each finds its hold past due) and 10 sweeps. Whichever
    script gets to an expired hold first expires it; the others must see it ended. Every
    expired hold is counted exactly once, its seats return, and the block adds up."""
    engine = make_engine(aredis_client)
    block = load_reserved(redis_client, 20, 30)
    gate = asyncio.Semaphore(50)  # the fixture's pool has 100 connections

    async def hold(who: str) -> str:
        async with gate:
            return (await engine.create(block, 2, owner=who, client=who)).hold_id

    old = await asyncio.gather(*(hold(f"old-{i}") for i in range(120)))
    for hold_id in old:
        force_expire(redis_client, block, hold_id)

    async def release(hold_id: str, who: str) -> str:
        async with gate:
            try:
                await engine.release(hold_id, requester=who)
            except errors.HoldNotActive as ended:
                return str(ended.details.get("status"))
            return "released"

    async def sweep() -> int:
        return await asyncio.to_thread(blocks.sweep, redis_client)

    outcomes = await asyncio.gather(
        *(hold(f"new-{i}") for i in range(60)),
        *(release(hold_id, f"old-{i}") for i, hold_id in enumerate(old[:40])),
        *(sweep() for _ in range(10)),
    )
    assert set(outcomes[60:100]) == {"expired"}  # none of them could release a dead hold
    assert expired(redis_client, block) == 120
    assert {(await engine.get(h)).status for h in old} == {"expired"}
    assert meta(redis_client, block)["held"] == str(60 * 2)
    assert_block_ok(redis_client, block)
