"""Accessible seating in the scripts: fans asking for wheelchair spaces from several OS
processes at once, racing pickers and best available; a late payment keeps a wheelchair
user on wheelchair spaces; the rebuild from the ledger withholds them again, reconcile sees
a block that does not, and a layout edited in the admin reaches a loaded block."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio as aredis

from amphi import errors
from amphi.accessible import parse_pairs
from amphi.block_spec import BlockSpec
from amphi.geometry import Geometry
from amphi.settings import Settings
from engine import blocks, drift, repair, sales
from engine.hold_types import Accessible
from tests.engine import _race_worker
from tests.engine._support import (
    assert_block_ok,
    force_expire,
    make_engine,
    meta,
    new_block,
    reserved_spec,
    seat_string,
)

ROWS, SPR = 3, 6  # rows A-C: index = row * 6 + seat - 1
PAIRS = parse_pairs("A1+A2, C6+C5", Geometry(ROWS, SPR))  # given A1 first, then C6


def loaded(client: redis.Redis, sold: list[int] | None = None, **changes) -> BlockSpec:
    spec = dataclasses.replace(reserved_spec(new_block("acc"), ROWS, SPR), accessible=PAIRS,
                               **changes)
    assert blocks.load_block(client, spec, sold or []) == "created"
    return spec


# -- under real concurrency ---------------------------------------------------------------
RACE_ROWS, RACE_SPR = 30, 20
# six pairs: three at each end of the back row (DD), which best available reaches last
RACE_PAIRS = parse_pairs("DD1+DD2, DD3+DD4, DD5+DD6, DD20+DD19, DD18+DD17, DD16+DD15",
                         Geometry(RACE_ROWS, RACE_SPR))
RACE_SEATS = {i for p in RACE_PAIRS for i in (p.space, p.companion)}
PROCESSES, ASKS_EACH, BEST_EACH = 4, 60, 40  # the best-available holds sell the block out


@pytest.fixture(scope="module")
def workers() -> Iterator[Any]:
    with _race_worker.race_pool(PROCESSES) as pool:
        yield pool


@pytest.mark.slow
def test_concurrent_asks_get_each_pair_once(settings: Settings, redis_client: redis.Redis,
                                            workers: Any) -> None:
    """Four processes, each with 60 fans asking for a space, picks of the pairs' seats and of
    the seats beside them, and best-available holds that take every other seat, all at
    once: each pair goes to one fan, no pick or best-available hold gets a withheld seat."""
    spec = dataclasses.replace(reserved_spec(new_block("accrace"), RACE_ROWS, RACE_SPR),
                               accessible=RACE_PAIRS)
    assert blocks.load_block(redis_client, spec) == "created"
    # DD1-DD2, DD2-DD3, DD18-DD19 (withheld), A7-A8, DD14-DD15 (half withheld), 3 times each
    contested = [[580, 581], [581, 582], [597, 598], [6, 7], [593, 594]] * 3
    ref = (spec.block.event_date.isoformat(), spec.block.section)
    reports = _race_worker.race(workers, _race_worker.accessible_process, [
        (settings.redis_url, ref, p, ASKS_EACH, contested, BEST_EACH, 700 + p)
        for p in range(PROCESSES)])
    results = [r for rep in reports for r in rep["results"]]
    assert not [r for r in results if r[0] == "error"], next(
        r[1] for r in results if r[0] == "error")
    asks = [r for r in results if r[0] == "accessible"]
    held = [r for r in asks if r[1] == "held"]
    assert len(asks) == PROCESSES * ASKS_EACH and len(held) == len(RACE_PAIRS)
    pairs = []
    for r in held:  # a space with its companion, or the space alone
        pair = next(p for p in RACE_PAIRS if p.space in r[4])
        wanted = sorted([pair.space, pair.companion]) if r[2] else [pair.space]
        assert r[4] == wanted, r
        pairs.append(pair)
    assert sorted(pairs, key=lambda p: p.space) == sorted(RACE_PAIRS, key=lambda p: p.space)
    claimed: Counter[int] = Counter(i for r in held for i in r[4])
    for r in results:
        if r[0] in ("pick", "reserved") and r[1] == "held":
            got = r[4]
            assert not set(got) & RACE_SEATS, r
            claimed.update(got)
    assert not [i for i, n in claimed.items() if n > 1], "a seat is in two holds"
    seats = seat_string(redis_client, spec.block)
    assert [i for i, c in enumerate(seats) if c == "H"] == sorted(claimed)
    # the companions of spaces held alone stay withheld
    alone = [p.companion for p in RACE_PAIRS if p.companion not in claimed]
    assert [i for i, c in enumerate(seats) if c in "WC"] == sorted(alone)
    assert meta(redis_client, spec.block)["withheld"] == str(len(alone))
    assert_block_ok(redis_client, spec.block)


def expected(spec: BlockSpec, tickets: list[int]) -> drift.Expected:
    return drift.Expected(reserved=True, capacity=spec.capacity, rows=ROWS, seats_per_row=SPR,
                          price_cents=spec.price_cents, active=True, ticket_seats=tuple(tickets),
                          ticket_count=len(tickets), accessible=PAIRS,
                          accessible_released=spec.accessible_released)


async def test_a_late_payment_retakes_the_space_even_while_withheld(
        redis_client: redis.Redis, aredis_client: aredis.Redis) -> None:
    spec = loaded(redis_client)
    engine = make_engine(aredis_client)
    hold = await engine.create(spec.block, 2, owner="", client="f1", accessible=Accessible(1))
    assert hold.seats == [0, 1] and hold.accessible == 1
    force_expire(redis_client, spec.block, hold.hold_id)
    await engine.availability([spec.block])  # expired: the seats are withheld again
    assert seat_string(redis_client, spec.block) == "WC" + "0" * 14 + "CW"

    sale = sales.sell(redis_client, spec.block, order_id="ORD-1", hold_id=hold.hold_id,
                      quantity=2, preferred=hold.seats)
    assert sale is not None and (sale.mode, sale.seats) == ("same", [0, 1])
    assert seat_string(redis_client, spec.block) == "SS" + "0" * 14 + "CW"
    assert meta(redis_client, spec.block)["withheld"] == "2"
    assert_block_ok(redis_client, spec.block)


async def test_a_late_payment_moves_to_another_pair_never_to_general_seats(
        redis_client: redis.Redis, aredis_client: aredis.Redis) -> None:
    spec = loaded(redis_client)
    engine = make_engine(aredis_client)
    late = await engine.create(spec.block, 2, owner="", client="f1", accessible=Accessible(1))
    later = await engine.create(spec.block, 2, owner="", client="f2", accessible=Accessible(1))
    assert (late.seats, later.seats) == ([0, 1], [16, 17])
    force_expire(redis_client, spec.block, late.hold_id)
    force_expire(redis_client, spec.block, later.hold_id)
    # meanwhile another wheelchair user gets the first space
    other = await engine.create(spec.block, 2, owner="", client="f3", accessible=Accessible(1))
    assert other.seats == [0, 1]
    moved = sales.sell(redis_client, spec.block, order_id="ORD-1", hold_id=late.hold_id,
                       quantity=2, preferred=late.seats)
    assert moved is not None and (moved.mode, moved.seats) == ("moved", [16, 17])
    # no pair left for the next, general seats plenty, and still no seats for it: a refund
    assert sales.sell(redis_client, spec.block, order_id="ORD-2", hold_id=later.hold_id,
                      quantity=2, preferred=later.seats) is None
    assert seat_string(redis_client, spec.block) == "HH" + "0" * 14 + "SS"
    assert_block_ok(redis_client, spec.block)


async def test_a_general_late_payment_never_takes_withheld_seats(
        redis_client: redis.Redis, aredis_client: aredis.Redis) -> None:
    # only A3-A6 are general and free
    spec = loaded(redis_client, sold=list(range(6, 16)))
    engine = make_engine(aredis_client)
    late = await engine.create(spec.block, 4, owner="", client="f1")
    assert late.seats == [2, 3, 4, 5]
    force_expire(redis_client, spec.block, late.hold_id)
    await engine.create(spec.block, 1, owner="", client="f2")  # takes one of them meanwhile
    assert sales.sell(redis_client, spec.block, order_id="ORD-1", hold_id=late.hold_id,
                      quantity=4, preferred=late.seats) is None
    assert seat_string(redis_client, spec.block)[:2] == "WC"


async def test_the_rebuild_withholds_them_and_releases_them_when_sold_out(
        redis_client: redis.Redis, aredis_client: aredis.Redis) -> None:
    spec = loaded(redis_client)
    engine = make_engine(aredis_client)
    hold = await engine.create(spec.block, 2, owner="", client="f1", accessible=Accessible(1))
    redis_client.set(spec.block.seats, "HH" + "0" * 16)  # the layout lost in Redis
    redis_client.hset(spec.block.meta, "withheld", 0)
    found = drift.compare(repair.snapshot(redis_client, spec.block), expected(spec, []),
                          stale_after_ms=60_000)
    assert {f.kind for f in found} == {drift.ACCESSIBLE_LAYOUT}
    repair.rebuild(redis_client, spec, ticket_seats=[], settled_orders=[])
    assert seat_string(redis_client, spec.block) == "HH" + "0" * 14 + "CW"
    assert (await engine.get(hold.hold_id)).status == "active"  # kept, with its seats
    assert_block_ok(redis_client, spec.block)

    # the ledger sold every general seat: rebuilt, the pairs join general sale
    general = [i for i in range(18) if i not in (0, 1, 16, 17)]
    repair.rebuild(redis_client, spec, ticket_seats=general, settled_orders=[])
    assert seat_string(redis_client, spec.block) == "HH" + "S" * 14 + "00"
    assert meta(redis_client, spec.block)["access_released"] == "1"
    assert drift.compare(repair.snapshot(redis_client, spec.block), expected(spec, general),
                         stale_after_ms=60_000) == []


async def test_a_layout_edited_in_the_admin_reaches_the_free_seats(
        redis_client: redis.Redis, aredis_client: aredis.Redis) -> None:
    spec = loaded(redis_client)
    engine = make_engine(aredis_client)
    held = await engine.create(spec.block, 1, owner="", client="f1",
                               accessible=Accessible(1, companions=False))
    assert held.seats == [0]
    # the admin moves the second pair to B3+B4 and adds nothing else
    moved = parse_pairs("A1+A2, B3+B4", Geometry(ROWS, SPR))
    assert blocks.load_block(redis_client, dataclasses.replace(spec, accessible=moved)) == \
        "refreshed"
    assert seat_string(redis_client, spec.block) == "HC0000" + "00WC00" + "000000"
    assert meta(redis_client, spec.block)["withheld"] == "3"
    # the box office releases them: the held space stays held, the rest is on general sale
    released = dataclasses.replace(spec, accessible=moved, accessible_released=True)
    blocks.load_block(redis_client, released)
    assert seat_string(redis_client, spec.block) == "H" + "0" * 17
    await engine.release(held.hold_id, requester="")
    assert seat_string(redis_client, spec.block) == "0" * 18
    assert_block_ok(redis_client, spec.block)
    # released for good: loading the block again withholds nothing
    blocks.load_block(redis_client, dataclasses.replace(released, accessible_released=False))
    assert seat_string(redis_client, spec.block) == "0" * 18
    # and a wheelchair user still gets the pairs first
    again = await engine.create(spec.block, 2, owner="", client="f2", accessible=Accessible(1))
    assert again.seats == [0, 1]


async def test_a_block_without_pairs_refuses_an_accessible_hold(
        redis_client: redis.Redis, aredis_client: aredis.Redis) -> None:
    spec = reserved_spec(new_block("plain"), ROWS, SPR)
    blocks.load_block(redis_client, spec)
    engine = make_engine(aredis_client)
    try:
        await engine.create(spec.block, 2, owner="", client="f1", accessible=Accessible(1))
    except errors.AccessibleUnavailable as refused:
        assert refused.details["available"] == 0
    else:
        raise AssertionError("held wheelchair spaces in a block that has none")
