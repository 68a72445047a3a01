"""Invariant 3: an expired hold's seats return to sale, even when nobody touches the block.

Holds here live one second (HoldEngine ttl_seconds=1); each test sleeps past that once.
"""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio as aredis

from amphi import errors
from engine import blocks
from engine.hold_types import TOMBSTONE_MS
from tests.engine._support import (
    assert_block_ok,
    block_violations,
    force_expire,
    load_ga,
    load_reserved,
    make_engine,
    meta,
    seat_string,
)

pytestmark = pytest.mark.slow

PAST_TTL = 1.15  # seconds: a 1 s hold is over by then


async def test_sweeper_returns_seats_of_an_untouched_block(
    redis_client: redis.Redis, aredis_client: aredis.Redis
) -> None:
    short = make_engine(aredis_client, ttl_seconds=1)
    sold = [0, 1, 2]
    reserved = load_reserved(redis_client, 4, 10, sold=sold)
    ga = load_ga(redis_client, 100, sold=10)
    other = load_reserved(redis_client, 2, 10)  # a block with a long hold: must stay held
    long_hold = await make_engine(aredis_client).create(other, 2, owner="u9", client="u9")

    a = await short.create(reserved, 4, owner="u1", client="u1")
    b = await short.create(reserved, 3, owner="", client="guest:1")
    g = await short.create(ga, 5, owner="u2", client="u2")
    assert meta(redis_client, reserved)["held"] == "7"
    assert seat_string(redis_client, reserved).count("H") == 7

    await asyncio.sleep(PAST_TTL)
    # nobody touched the blocks: the seats are still marked held in Redis
    assert seat_string(redis_client, reserved).count("H") == 7
    assert (await short.get(a.hold_id)).status == "active"

    freed = blocks.sweep(redis_client)  # what the sweeper job does
    assert freed == 4 + 3 + 5

    seats = seat_string(redis_client, reserved)
    assert seats == "SSS" + "0" * 37
    m = meta(redis_client, reserved)
    assert (m["held"], m["sold"]) == ("0", "3")
    gm = meta(redis_client, ga)
    assert (gm["held"], gm["sold"]) == ("0", "10")
    for hold in (a, b, g):
        got = await short.get(hold.hold_id)
        assert got.status == "expired"
        assert got.ended_ms is not None and got.ended_ms >= got.expires_ms
        assert got.seats == hold.seats  # the tombstone still says what was held
        assert got.quantity == hold.quantity
    # the other block's live hold was left alone
    assert (await short.get(long_hold.hold_id)).status == "active"
    assert meta(redis_client, other)["held"] == "2"
    for block in (reserved, ga, other):
        assert_block_ok(redis_client, block)
    # the availability the fans see is back to full
    c = blocks.counts(redis_client, reserved)
    assert c is not None and (c.available, c.held, c.sold) == (37, 0, 3)
    assert blocks.sweep(redis_client) == 0  # nothing left to do


async def test_sweep_reclaims_more_than_one_batch(
    redis_client: redis.Redis, aredis_client: aredis.Redis
) -> None:
    """More expired holds than one script call reclaims (RECLAIM_LIMIT = 200). Expiry is
    forced (scores and records moved into the past) so that creating 440 holds cannot
    outlast a short TTL."""
    engine = make_engine(aredis_client)
    ga = load_ga(redis_client, 1000)
    reserved = load_reserved(redis_client, 10, 30)
    gate = asyncio.Semaphore(50)  # the fixture's pool has 100 connections

    async def hold_one(block, who: str) -> tuple:
        async with gate:
            return block, (await engine.create(block, 1, owner=who, client=who)).hold_id

    made = await asyncio.gather(
        *(hold_one(ga, f"u{i}") for i in range(230)),
        *(hold_one(reserved, f"r{i}") for i in range(210)),
    )
    assert meta(redis_client, ga)["held"] == "230"
    assert meta(redis_client, reserved)["held"] == "210"
    for block, hold_id in made:
        force_expire(redis_client, block, hold_id)
    assert blocks.sweep(redis_client) == 440
    assert meta(redis_client, ga)["held"] == "0"
    assert meta(redis_client, reserved)["held"] == "0"
    assert redis_client.zcard(ga.holds) == 0
    assert seat_string(redis_client, reserved) == "0" * 300
    assert_block_ok(redis_client, ga)
    assert_block_ok(redis_client, reserved)


async def test_next_create_reclaims_without_a_sweep(
    redis_client: redis.Redis, aredis_client: aredis.Redis
) -> None:
    short = make_engine(aredis_client, ttl_seconds=1)
    normal = make_engine(aredis_client)
    block = load_reserved(redis_client, 1, 10)  # ten seats
    first = await short.create(block, 8, owner="u1", client="u1")
    with pytest.raises(errors.SoldOut):
        await normal.create(block, 4, owner="u2", client="u2")

    await asyncio.sleep(PAST_TTL)
    second = await normal.create(block, 4, owner="u2", client="u2")
    assert second.seats == [3, 4, 5, 6]  # the centre again: the expired seats came back
    assert (await normal.get(first.hold_id)).status == "expired"
    m = meta(redis_client, block)
    assert m["held"] == "4"
    assert seat_string(redis_client, block) == "000HHHH000"
    assert_block_ok(redis_client, block)


async def test_release_after_expiry_is_refused_and_frees_the_seats(
    redis_client: redis.Redis, aredis_client: aredis.Redis
) -> None:
    short = make_engine(aredis_client, ttl_seconds=1, max_active=1)
    block = load_reserved(redis_client, 2, 10)
    swept_block = load_reserved(redis_client, 2, 10)
    hold = await short.create(block, 2, owner="u1", client="u1")
    swept = await short.create(swept_block, 2, owner="u3", client="u3")
    await asyncio.sleep(PAST_TTL)

    # not swept, not touched: the release itself notices the expiry
    with pytest.raises(errors.HoldNotActive) as exc:
        await short.release(hold.hold_id, requester="u1")
    assert exc.value.details["status"] == "expired"
    assert seat_string(redis_client, block) == "0" * 20
    assert meta(redis_client, block)["held"] == "0"
    assert (await short.get(hold.hold_id)).status == "expired"
    assert_block_ok(redis_client, block)

    # swept first, then released: still refused, still expired
    blocks.sweep(redis_client)
    with pytest.raises(errors.HoldNotActive) as exc:
        await short.release(swept.hold_id, requester="u3")
    assert exc.value.details["status"] == "expired"
    assert meta(redis_client, swept_block)["held"] == "0"

    # the owner's active-hold slot was freed by the expiry too (max_active=1)
    again = await short.create(block, 2, owner="u1", client="u1")
    assert again.status == "active"


async def test_tombstones_are_readable_then_trimmed(
    redis_client: redis.Redis, aredis_client: aredis.Redis
) -> None:
    engine = make_engine(aredis_client)
    block = load_reserved(redis_client, 2, 10)
    hold = await engine.create(block, 2, owner="u1", client="u1")
    released = await engine.release(hold.hold_id, requester="u1")
    assert released.status == "released"
    assert released.seats == hold.seats
    assert (await engine.get(hold.hold_id)).status == "released"

    # an hour later (the ended zset's score is what time moves) the tombstone is trimmed
    redis_client.zadd(block.ended, {hold.hold_id: released.ended_ms - TOMBSTONE_MS - 1})
    blocks.counts(redis_client, block)
    with pytest.raises(errors.HoldNotFound):
        await engine.get(hold.hold_id)
    assert redis_client.zcard(block.ended) == 0


async def test_holds_expiring_while_fans_hold_and_the_sweeper_runs_never_share_a_seat(
    redis_client: redis.Redis, aredis_client: aredis.Redis
) -> None:
    """Expiry under load: for 2.5 s, in a 40-seat block, 10 fans hold 2 seats for 10
    minutes and 50 fans hold 2 seats for 1 s again and again; reclaim happens inside their
    calls while the sweeper, in a thread, sweeps the same block. No two active holds ever
    share a seat, the counters add up, and every 1 s hold is over once its second has
    passed."""
    short = make_engine(aredis_client, ttl_seconds=1)
    normal = make_engine(aredis_client)
    block = load_reserved(redis_client, 4, 10)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 2.5
    made: list[tuple[str, bool]] = []  # hold id, made with a 1 s TTL
    broken: list[str] = []  # invariants the sweeper's snapshots found broken

    async def fan(i: int) -> None:
        engine = normal if i < 10 else short
        while loop.time() < deadline:
            try:
                hold = await engine.create(block, 2, owner=f"f{i}", client=f"f{i}-{len(made)}")
            except (errors.SoldOut, errors.NoAdjacentSeats):
                await asyncio.sleep(0.02)
                continue
            made.append((hold.hold_id, engine is short))
            if engine is normal:
                return
            await asyncio.sleep(0.01)

    def sweeper() -> None:
        while loop.time() < deadline:
            blocks.sweep(redis_client)
            broken.extend(block_violations(redis_client, block))  # a MULTI snapshot

    await asyncio.gather(asyncio.to_thread(sweeper), *(fan(i) for i in range(60)))
    assert not broken, broken[:5]
    assert len(made) > 20  # more than 40 seats hold at once: expired seats were held again
    assert_block_ok(redis_client, block)
    await asyncio.sleep(PAST_TTL)
    blocks.sweep(redis_client)
    for hold_id, is_short in made:
        status = (await normal.get(hold_id)).status
        assert status == ("expired" if is_short else "active"), (hold_id, is_short)
    assert_block_ok(redis_client, block)
