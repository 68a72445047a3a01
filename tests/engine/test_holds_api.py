"""The HoldEngine contract, against real Redis: idempotency, admission limits, refusals,
ownership, GA, NOSCRIPT recovery and block loading."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
import redis.asyncio as aredis

from amphi import errors, keys
from amphi.block_spec import BlockSpec
from amphi.settings import Settings
from engine import blocks, scripts
from engine.codecs import block_keys
from engine.hold_ids import IDEMPOTENCY_WINDOW_S, new_hold_id
from engine.hold_types import TOMBSTONE_MS, Hold
from tests._storage import redis_snapshot
from tests.engine._support import (
    DAY,
    PRICE,
    assert_block_ok,
    engine_client,
    ga_spec,
    load_ga,
    load_reserved,
    make_engine,
    meta,
    new_block,
    new_block_beside,
    ping_owner,
    records,
    redis_now_ms,
    reserved_spec,
    seat_string,
    write_seat_map,
)


# -- create / get ----------------------------------------------------------------------------
async def test_create_returns_what_get_reads(redis_client: redis.Redis,
                                             aredis_client: aredis.Redis) -> None:
    engine = make_engine(aredis_client)
    block = load_reserved(redis_client, 3, 10)
    hold = await engine.create(block, 3, owner="user:1", client="user:1")
    assert hold.status == "active"
    assert hold.seats == [3, 4, 5]
    assert hold.quantity == 3 and hold.price_cents == PRICE
    assert hold.total_cents == 3 * PRICE
    assert hold.expires_ms - hold.created_ms == 600_000
    got = await engine.get(hold.hold_id)
    assert got == hold
    assert_block_ok(redis_client, block)


async def test_get_unknown_hold(redis_client: redis.Redis, aredis_client: aredis.Redis) -> None:
    with pytest.raises(errors.HoldNotFound):
        await make_engine(aredis_client).get("no-such-hold")
    with pytest.raises(errors.HoldNotFound):
        await make_engine(aredis_client).release("no-such-hold", requester="u")


# -- idempotency -----------------------------------------------------------------------------
async def test_idempotency_key_returns_the_same_hold(redis_client: redis.Redis,
                                                     aredis_client: aredis.Redis) -> None:
    engine = make_engine(aredis_client)
    block = load_reserved(redis_client, 3, 10)
    first = await engine.create(block, 2, owner="u1", client="u1", idempotency_key="k-1")
    again = await engine.create(block, 2, owner="u1", client="u1", idempotency_key="k-1")
    assert again.hold_id == first.hold_id
    assert again.seats == first.seats
    assert meta(redis_client, block)["held"] == "2"
    assert len(records(redis_client, block)) == 1
    # a different key is a different request
    other = await engine.create(block, 2, owner="u1", client="u1", idempotency_key="k-2")
    assert other.hold_id != first.hold_id
    assert meta(redis_client, block)["held"] == "4"
    assert_block_ok(redis_client, block)


async def test_concurrent_retries_make_exactly_one_hold(redis_client: redis.Redis,
                                                        aredis_client: aredis.Redis) -> None:
    engine = make_engine(aredis_client)
    block = load_reserved(redis_client, 5, 20)
    for round_ in range(5):
        key = f"retry-{round_}"
        outcomes = await asyncio.gather(
            *(engine.create(block, 3, owner="u1", client="u1", idempotency_key=key)
              for _ in range(25)),
            return_exceptions=True,
        )
        holds = [o for o in outcomes if isinstance(o, Hold)]
        assert len(holds) == len(outcomes), outcomes  # every retry gets the hold
        assert len({h.hold_id for h in holds}) == 1
        assert len({tuple(h.seats) for h in holds}) == 1
        # after the dust settles a retry returns that hold
        again = await engine.create(block, 3, owner="u1", client="u1", idempotency_key=key)
        assert again.hold_id == holds[0].hold_id
        await engine.release(again.hold_id, requester="u1")  # keep under the owner limit
    recs = records(redis_client, block)
    assert len(recs) == 5  # one hold per key
    assert meta(redis_client, block)["held"] == "0"
    assert_block_ok(redis_client, block)


async def test_idempotency_key_reused_for_another_request(redis_client: redis.Redis,
                                                          aredis_client: aredis.Redis) -> None:
    engine = make_engine(aredis_client)
    block = load_reserved(redis_client, 3, 10)
    await engine.create(block, 2, owner="u1", client="u1", idempotency_key="k")
    with pytest.raises(errors.IdempotencyMismatch):
        await engine.create(block, 3, owner="u1", client="u1", idempotency_key="k")
    with pytest.raises(errors.IdempotencyMismatch):
        await engine.create(block, 2, owner="u1", client="u1", idempotency_key="k",
                            allow_split=True)
    assert meta(redis_client, block)["held"] == "2"
    # the same key from another client is another request altogether
    other = await engine.create(block, 3, owner="u2", client="u2", idempotency_key="k")
    assert other.quantity == 3
    assert meta(redis_client, block)["held"] == "5"


async def test_idempotency_key_is_scoped_to_its_section_and_date(
    redis_client: redis.Redis, aredis_client: aredis.Redis
) -> None:
    """A hold is one script call on its block's slot, so an Idempotency-Key names one
    request to one section on one date: in another block the same key is another request,
    and retrying either returns its own hold."""
    engine = make_engine(aredis_client)
    block = load_reserved(redis_client, 3, 10)
    other_block = load_reserved(redis_client, 3, 10)
    first = await engine.create(block, 2, owner="u1", client="u1", idempotency_key="k")
    other = await engine.create(other_block, 2, owner="u1", client="u1", idempotency_key="k")
    assert other.hold_id != first.hold_id
    assert (await engine.create(other_block, 2, owner="u1", client="u1",
                                idempotency_key="k")).hold_id == other.hold_id
    assert meta(redis_client, block)["held"] == "2"
    assert meta(redis_client, other_block)["held"] == "2"


async def test_refused_request_forgets_its_idempotency_key(redis_client: redis.Redis,
                                                           aredis_client: aredis.Redis) -> None:
    engine = make_engine(aredis_client)
    block = load_reserved(redis_client, 1, 4, active=False)
    with pytest.raises(errors.NotOnSale):
        await engine.create(block, 2, owner="u1", client="u1", idempotency_key="k")
    blocks.load_block(redis_client, reserved_spec(block, 1, 4, active=True))
    hold = await engine.create(block, 2, owner="u1", client="u1", idempotency_key="k")
    assert hold.status == "active"


# -- admission: per-owner limit and rate limit -----------------------------------------------
async def test_active_hold_limit_per_owner(redis_client: redis.Redis,
                                           aredis_client: aredis.Redis) -> None:
    engine = make_engine(aredis_client, max_active=2)
    block = load_reserved(redis_client, 5, 10)
    tiny = load_reserved(redis_client, 1, 1)
    a = await engine.create(block, 1, owner="u1", client="u1")
    # a refused request does not take a slot
    await engine.create(tiny, 1, owner="x", client="x")
    with pytest.raises(errors.SoldOut):
        await engine.create(tiny, 1, owner="u1", client="u1")
    await engine.create(block, 1, owner="u1", client="u1")
    with pytest.raises(errors.TooManyHolds) as exc:
        await engine.create(block, 1, owner="u1", client="u1")
    assert 0 < exc.value.details["retry_after_ms"] <= 600_000
    # another client is not affected
    await engine.create(block, 1, owner="u2", client="u2")
    # releasing frees the slot
    await engine.release(a.hold_id, requester="u1")
    await engine.create(block, 1, owner="u1", client="u1")
    assert meta(redis_client, block)["held"] == "3"
    assert_block_ok(redis_client, block)


async def test_active_hold_limit_under_concurrency(redis_client: redis.Redis,
                                                   aredis_client: aredis.Redis) -> None:
    engine = make_engine(aredis_client, max_active=2)
    block = load_reserved(redis_client, 5, 10)
    outcomes = await asyncio.gather(
        *(engine.create(block, 1, owner="u1", client="u1") for _ in range(20)),
        return_exceptions=True,
    )
    holds = [o for o in outcomes if isinstance(o, Hold)]
    assert len(holds) == 2
    assert all(isinstance(o, errors.TooManyHolds) for o in outcomes if o not in holds)
    assert meta(redis_client, block)["held"] == "2"
    assert len(records(redis_client, block)) == 2


async def test_rate_limit(redis_client: redis.Redis, aredis_client: aredis.Redis) -> None:
    engine = make_engine(aredis_client, rate_limit=5, max_active=50)
    block = load_reserved(redis_client, 5, 10)
    for _ in range(5):
        await engine.create(block, 1, owner="u1", client="u1")
    with pytest.raises(errors.RateLimited) as exc:
        await engine.create(block, 1, owner="u1", client="u1")
    assert exc.value.details["retry_after_ms"] > 0
    # the refused call held nothing, and another client has its own budget
    assert meta(redis_client, block)["held"] == "5"
    await engine.create(block, 1, owner="u2", client="u2")


async def test_rate_limit_under_concurrency(redis_client: redis.Redis,
                                            aredis_client: aredis.Redis) -> None:
    engine = make_engine(aredis_client, rate_limit=5, max_active=50)
    block = load_ga(redis_client, 100)
    outcomes = await asyncio.gather(
        *(engine.create(block, 1, owner="u1", client="u1") for _ in range(20)),
        return_exceptions=True,
    )
    assert sum(isinstance(o, Hold) for o in outcomes) == 5
    assert sum(isinstance(o, errors.RateLimited) for o in outcomes) == 15
    assert meta(redis_client, block)["held"] == "5"


async def test_rate_limit_zero_disables_it(redis_client: redis.Redis,
                                           aredis_client: aredis.Redis) -> None:
    engine = make_engine(aredis_client, rate_limit=0, max_active=100)
    block = load_ga(redis_client, 100)
    for _ in range(30):
        await engine.create(block, 1, owner="u1", client="u1")
    assert meta(redis_client, block)["held"] == "30"


async def test_rate_limit_bursts_exactly_the_limit_when_it_does_not_divide_a_minute(
        redis_client: redis.Redis, aredis_client: aredis.Redis) -> None:
    engine = make_engine(aredis_client, rate_limit=7, max_active=50)
    block = load_ga(redis_client, 100)
    for _ in range(7):
        await engine.create(block, 1, owner="u1", client="u1")
    with pytest.raises(errors.RateLimited) as exc:
        await engine.create(block, 1, owner="u1", client="u1")
    # one more request is due one interval (60 s / 7) after the first
    assert 0 < exc.value.details["retry_after_ms"] <= 8572
    assert meta(redis_client, block)["held"] == "7"


async def test_refused_requests_use_up_the_rate_limit(redis_client: redis.Redis,
                                                      aredis_client: aredis.Redis) -> None:
    """Hammering a sold-out section is limited like any other request."""
    engine = make_engine(aredis_client, rate_limit=3, max_active=50)
    block = load_ga(redis_client, 1)
    await engine.create(block, 1, owner="x", client="x")
    for _ in range(3):
        with pytest.raises(errors.SoldOut):
            await engine.create(block, 1, owner="u1", client="u1")
    with pytest.raises(errors.RateLimited):
        await engine.create(block, 1, owner="u1", client="u1")


def client_entry(client: redis.Redis, block: keys.BlockKeys, who: str) -> tuple[int, int] | None:
    raw = client.hget(block.records, f"c:{who}")
    return None if raw is None else tuple(int(v) for v in raw.split())  # type: ignore[return-value]


async def test_a_client_entry_lives_while_it_limits_something(
        redis_client: redis.Redis, aredis_client: aredis.Redis) -> None:
    block = load_ga(redis_client, 100)
    # no rate limit: the entry is the active-hold count, gone with the last hold
    engine = make_engine(aredis_client, rate_limit=0)
    a = await engine.create(block, 1, owner="u1", client="u1")
    b = await engine.create(block, 1, owner="u1", client="u1")
    assert client_entry(redis_client, block, "u1") == (2, 0)
    await engine.release(a.hold_id, requester="u1")
    assert client_entry(redis_client, block, "u1") == (1, 0)
    await engine.release(b.hold_id, requester="u1")
    assert client_entry(redis_client, block, "u1") is None

    # 60 a minute: a released hold leaves the rate limit's entry until its time has passed
    engine = make_engine(aredis_client, rate_limit=60)
    c = await engine.create(block, 1, owner="u2", client="u2")
    now_us = redis_now_ms(redis_client) * 1000
    holds, tat = client_entry(redis_client, block, "u2") or (0, 0)
    assert holds == 1 and now_us < tat <= now_us + 1_000_000
    await engine.release(c.hold_id, requester="u2")
    assert client_entry(redis_client, block, "u2") == (0, tat)
    await engine.availability([block])  # the sweeper's call: the entry still limits
    assert client_entry(redis_client, block, "u2") == (0, tat)
    while redis_now_ms(redis_client) * 1000 <= tat:
        await asyncio.sleep(0.05)
    await engine.availability([block])
    assert client_entry(redis_client, block, "u2") is None
    assert_block_ok(redis_client, block)


async def test_many_clients_leave_the_meta_hash_small(redis_client: redis.Redis,
                                                      aredis_client: aredis.Redis) -> None:
    """The counters every hold reads stay in a hash of a few fields (a listpack, cheap to
    read), however many fans hold in the block; their entries sit beside the hold records,
    in a hashtable from the first hold."""
    engine = make_engine(aredis_client, rate_limit=30)
    block = load_ga(redis_client, 1000)
    await asyncio.gather(*(engine.create(block, 1, owner=f"u{i}", client=f"u{i}")
                           for i in range(300)))
    assert redis_client.hlen(block.meta) <= 12
    assert redis_client.object("encoding", block.meta) == b"listpack"
    assert redis_client.object("encoding", block.records) == b"hashtable"
    entries = [k for k in redis_client.hkeys(block.records) if k.startswith(b"c:")]
    assert len(entries) == 300
    assert_block_ok(redis_client, block)


# -- refusals ----------------------------------------------------------------------------------
@pytest.mark.parametrize("qty", [0, 9, -1])
async def test_bad_quantity_writes_nothing(redis_client: redis.Redis,
                                           aredis_client: aredis.Redis, qty: int) -> None:
    engine = make_engine(aredis_client)
    block = load_reserved(redis_client, 2, 10)
    before = redis_snapshot(redis_client)
    with pytest.raises(errors.InvalidRequest):
        await engine.create(block, qty, owner="u1", client="u1", idempotency_key="k")
    with pytest.raises(errors.InvalidRequest):
        await engine.check(block, qty)
    assert redis_snapshot(redis_client) == before


async def test_check_writes_nothing(redis_client: redis.Redis,
                                    aredis_client: aredis.Redis) -> None:
    engine = make_engine(aredis_client)
    block = load_reserved(redis_client, 2, 10)
    await engine.create(block, 2, owner="u1", client="u1")
    before = redis_snapshot(redis_client)
    offer = await engine.check(block, 4)
    # front row "0000HH0000": both free runs fit exactly, equally off-centre: leftmost
    assert offer.seats == [0, 1, 2, 3]
    assert offer.expires_ms == 0
    assert redis_snapshot(redis_client) == before


async def test_inactive_blocks_are_not_on_sale_and_missing_ones_unavailable(
        redis_client: redis.Redis, aredis_client: aredis.Redis) -> None:
    """A block Redis does not have is one it lost (the API asks only for blocks the ledger
    has): 503 until the worker restores it, not "not on sale"."""
    engine = make_engine(aredis_client, max_active=1)
    inactive = load_reserved(redis_client, 2, 10, active=False)
    unknown = keys.BlockKeys(DAY, "no-such-section")
    for block, refusal in ((inactive, errors.NotOnSale),
                           (unknown, errors.InventoryUnavailable)):
        with pytest.raises(refusal):
            await engine.create(block, 2, owner="u1", client="u1")
        with pytest.raises(refusal):
            await engine.check(block, 2)
    assert meta(redis_client, inactive)["held"] == "0"
    assert seat_string(redis_client, inactive) == "0" * 20
    assert not redis_client.exists(unknown.meta, unknown.seats, unknown.records)
    # the refusals gave the owner's only slot back
    ok = load_reserved(redis_client, 2, 10)
    await engine.create(ok, 2, owner="u1", client="u1")


async def test_sold_out_and_no_adjacent(redis_client: redis.Redis,
                                        aredis_client: aredis.Redis) -> None:
    engine = make_engine(aredis_client)
    # row of 8 with seats 2 and 5 sold: free runs of 2, 2 and 2
    block = load_reserved(redis_client, 1, 8, sold=[2, 5])
    with pytest.raises(errors.SoldOut) as exc:
        await engine.create(block, 7, owner="u1", client="u1")
    assert exc.value.details["available"] == 6
    with pytest.raises(errors.NoAdjacentSeats) as exc2:
        await engine.create(block, 3, owner="u1", client="u1")
    assert exc2.value.details["available"] == 6
    split = await engine.create(block, 3, owner="u1", client="u1", allow_split=True)
    # seats 3 and 4 are nearest the centre; 1 and 6 tie next, the leftmost wins
    assert split.seats == [1, 3, 4]
    assert meta(redis_client, block)["held"] == "3"
    assert_block_ok(redis_client, block)


# -- release -----------------------------------------------------------------------------------
async def test_release_by_another_user_is_forbidden(redis_client: redis.Redis,
                                                    aredis_client: aredis.Redis) -> None:
    engine = make_engine(aredis_client)
    block = load_reserved(redis_client, 2, 10)
    hold = await engine.create(block, 2, owner="user:alice", client="user:alice")
    for requester in ("user:mallory", ""):
        with pytest.raises(errors.Forbidden):
            await engine.release(hold.hold_id, requester=requester)
    assert (await engine.get(hold.hold_id)).status == "active"
    assert meta(redis_client, block)["held"] == "2"

    released = await engine.release(hold.hold_id, requester="user:alice")
    assert released.status == "released"
    assert released.ended_ms is not None
    assert seat_string(redis_client, block) == "0" * 20
    with pytest.raises(errors.HoldNotActive) as exc:
        await engine.release(hold.hold_id, requester="user:alice")
    assert exc.value.details["status"] == "released"
    assert_block_ok(redis_client, block)


async def test_guest_hold_release(redis_client: redis.Redis,
                                  aredis_client: aredis.Redis) -> None:
    engine = make_engine(aredis_client)
    block = load_reserved(redis_client, 2, 10)
    hold = await engine.create(block, 2, owner="", client="guest:10.0.0.1")
    released = await engine.release(hold.hold_id, requester="")
    assert released.status == "released"
    assert meta(redis_client, block)["held"] == "0"


# -- general admission ---------------------------------------------------------------------------
async def test_ga_holds_have_no_seats(redis_client: redis.Redis,
                                      aredis_client: aredis.Redis) -> None:
    engine = make_engine(aredis_client)
    ga = load_ga(redis_client, 10, sold=3)
    hold = await engine.create(ga, 4, owner="u1", client="u1")
    assert hold.seats == []
    assert (await engine.get(hold.hold_id)).seats == []
    assert (await engine.check(ga, 3)).seats == []
    assert redis_client.get(ga.seats) is None
    with pytest.raises(errors.SoldOut) as exc:
        await engine.create(ga, 4, owner="u2", client="u2")
    assert exc.value.details["available"] == 3
    c = (await engine.availability([ga]))[0]
    assert c is not None and (c.capacity, c.held, c.sold, c.available) == (10, 4, 3, 3)
    await engine.release(hold.hold_id, requester="u1")
    assert meta(redis_client, ga)["held"] == "0"
    assert_block_ok(redis_client, ga)


# -- NOSCRIPT ------------------------------------------------------------------------------------
async def test_scripts_survive_script_flush(redis_client: redis.Redis,
                                            aredis_client: aredis.Redis) -> None:
    engine = make_engine(aredis_client)
    block = load_reserved(redis_client, 2, 10)
    ga = load_ga(redis_client, 10)

    redis_client.script_flush()
    hold = await engine.create(block, 2, owner="u1", client="u1")
    assert hold.seats == [4, 5]

    redis_client.script_flush()
    counted = await engine.availability([block, ga])
    assert [c.held for c in counted if c] == [2, 0]

    redis_client.script_flush()
    assert (await engine.check(block, 2)).seats == [2, 3]  # "0000HH0000": next to the pair

    redis_client.script_flush()
    assert (await engine.release(hold.hold_id, requester="u1")).status == "released"

    redis_client.script_flush()
    counts = blocks.counts(redis_client, block)
    assert counts is not None and counts.held == 0
    redis_client.script_flush()
    assert blocks.sweep(redis_client) == 0
    redis_client.script_flush()
    assert blocks.load_block(redis_client, reserved_spec(block, 2, 10)) == "refreshed"


# -- load_block ----------------------------------------------------------------------------------
async def test_load_block_twice_keeps_holds_and_sold_seats(redis_client: redis.Redis,
                                                           aredis_client: aredis.Redis) -> None:
    engine = make_engine(aredis_client)
    block = load_reserved(redis_client, 2, 10, sold=[0, 19])
    hold = await engine.create(block, 3, owner="u1", client="u1")
    seats_before = seat_string(redis_client, block)

    spec = reserved_spec(block, 2, 10, price=9_900, active=True)
    assert blocks.load_block(redis_client, spec, [5, 6, 7]) == "refreshed"
    assert seat_string(redis_client, block) == seats_before  # sold list ignored on refresh
    m = meta(redis_client, block)
    assert (m["held"], m["sold"], m["price_cents"]) == ("3", "2", "9900")
    assert (await engine.get(hold.hold_id)).status == "active"
    assert_block_ok(redis_client, block)

    # taking it off sale keeps everything too
    assert blocks.load_block(redis_client, reserved_spec(block, 2, 10, active=False)) \
        == "refreshed"
    with pytest.raises(errors.NotOnSale):
        await engine.create(block, 1, owner="u2", client="u2")
    assert seat_string(redis_client, block) == seats_before
    assert block in blocks.loaded_blocks(redis_client)


@pytest.mark.parametrize("rows, spr", [(3, 10), (1, 20), (4, 5)])
def test_load_block_geometry_change_conflicts(redis_client: redis.Redis, rows: int,
                                              spr: int) -> None:
    block = load_reserved(redis_client, 2, 10, sold=[3])
    with pytest.raises(errors.BlockConflict):
        blocks.load_block(redis_client, reserved_spec(block, rows, spr))
    assert seat_string(redis_client, block) == "000S" + "0" * 16
    assert meta(redis_client, block)["rows"] == "2"


def test_load_block_kind_change_conflicts(redis_client: redis.Redis) -> None:
    block = load_ga(redis_client, 20)
    with pytest.raises(errors.BlockConflict):
        blocks.load_block(redis_client, reserved_spec(block, 2, 10))
    ga = load_reserved(redis_client, 2, 10)
    with pytest.raises(errors.BlockConflict):
        blocks.load_block(redis_client, ga_spec(ga, 20))


def test_load_block_rejects_sold_seats_outside_the_section(redis_client: redis.Redis) -> None:
    block = keys.BlockKeys(DAY, "bad-sold")
    with pytest.raises(errors.BlockConflict):
        blocks.load_block(redis_client, reserved_spec(block, 2, 10), [20])
    with pytest.raises(errors.BlockConflict):
        blocks.load_block(redis_client, ga_spec(keys.BlockKeys(DAY, "bad-ga"), 10), 11)
    assert not redis_client.exists(block.meta, block.seats)


# -- regressions for bugs found in the engine at commit cbac8a8 -----------------------------
def test_load_block_rejects_a_negative_sold_index(redis_client: redis.Redis) -> None:
    """Found at cbac8a8: lua/load_block.lua read sold indices with
    string.gmatch(ARGV[7], '%d+'), which drops the sign, so index -1 silently sold seat 1
    instead of answering 'bad_sold'."""
    block = keys.BlockKeys(DAY, "negative-sold")
    with pytest.raises(errors.BlockConflict):
        blocks.load_block(redis_client, reserved_spec(block, 2, 10), [-1])
    assert seat_string(redis_client, block) in ("", "0" * 20)


def test_load_block_rejects_capacity_that_is_not_rows_times_seats(
    redis_client: redis.Redis,
) -> None:
    """Found at cbac8a8: load_block accepted a reserved block whose capacity is not
    rows x seats_per_row. create_hold counts `capacity` as available but only picks among
    rows x seats_per_row seats: seats beyond the grid were for sale and never allocatable."""
    block = keys.BlockKeys(DAY, "bad-geometry")
    spec = BlockSpec(block, "reserved", 25, 2, 10, PRICE, True)
    with pytest.raises(errors.BlockConflict):
        blocks.load_block(redis_client, spec)


SLOW_MAP = "SSS000SSSS" * 500_000  # every pair strands a seat: create_hold scans all, 0.3-2 s


async def redis_is_busy(probe: aredis.Redis, key: str) -> asyncio.Task:
    """Wait until the Redis that holds `key` is running a long script (a PING stops
    answering); returns that pending PING, to be awaited once the script is over."""
    for _ in range(500):
        ping = asyncio.create_task(ping_owner(probe, key))
        done, _pending = await asyncio.wait({ping}, timeout=0.03)
        if not done:
            return ping
        await asyncio.sleep(0.005)
    raise AssertionError("Redis never got busy")


async def test_cancelled_create_keeps_its_idempotency_key(
    redis_client: redis.Redis, aredis_client: aredis.Redis, settings: Settings
) -> None:
    """Found at cbac8a8: HoldEngine.create (engine/holds.py, `except BaseException:` around
    `_create_in_block`) called unadmit_hold with forget_key=1 on ANY exception, including a
    cancellation (request timeout, server shutdown) arriving after the create_hold EVALSHA
    was sent. Redis still ran the script and the hold existed, but the Idempotency-Key and
    the owner's active-hold slot were dropped: the client's retry with the same key made a
    second hold (DESIGN.md: "never a second one"), and the first was orphaned, holding
    seats nobody could see, outside the owner's limit."""
    engine = make_engine(aredis_client)
    block = new_block("slow")
    write_seat_map(redis_client, block, SLOW_MAP, 10)
    probe = engine_client(settings.redis_url)
    try:
        # both connected to the block's server
        await asyncio.gather(ping_owner(probe, block.meta), ping_owner(aredis_client, block.meta))
        create = asyncio.create_task(
            engine.create(block, 2, owner="u1", client="u1", idempotency_key="k"))
        stuck = await redis_is_busy(probe, block.meta)  # create_hold is running in Redis
        create.cancel()
        with pytest.raises(asyncio.CancelledError):
            await create
        await stuck
    finally:
        await probe.aclose()
    # the hold was made all the same
    made = [x.decode() for x in redis_client.zrange(block.holds, 0, -1)]
    assert len(made) == 1 and meta(redis_client, block)["held"] == "2"

    retry = await engine.create(block, 2, owner="u1", client="u1", idempotency_key="k")
    assert retry.hold_id == made[0], "the retry made a second hold"
    assert meta(redis_client, block)["held"] == "2", "two holds for one Idempotency-Key"


async def test_create_cancelled_during_admission_does_not_wedge_the_key(
    redis_client: redis.Redis, aredis_client: aredis.Redis, settings: Settings
) -> None:
    """Found at cbac8a8: HoldEngine.create ran admit_hold outside its try/except. A call
    cancelled after admit_hold was sent (here: Redis busy with another block's long script)
    was still admitted by Redis: the Idempotency-Key was stored and an owner slot taken,
    but no hold was ever made. Every retry with that key answered RequestInProgress, and
    the owner's slot stayed taken, until the key expired with the hold TTL (10 min)."""
    engine = make_engine(aredis_client, max_active=1)
    slow = new_block("slow")
    write_seat_map(redis_client, slow, SLOW_MAP, 10)
    block = load_reserved(redis_client, 2, 10, block=new_block_beside(redis_client, slow))

    other = engine_client(settings.redis_url)
    probe = engine_client(settings.redis_url)
    try:
        await asyncio.gather(ping_owner(other, slow.meta), ping_owner(probe, slow.meta),
                             ping_owner(aredis_client, block.meta))
        busy = asyncio.create_task(make_engine(other).check(slow, 2))
        stuck = await redis_is_busy(probe, slow.meta)  # the long check is running
        create = asyncio.create_task(
            engine.create(block, 2, owner="u1", client="u1", idempotency_key="k"))
        await asyncio.sleep(0.05)  # admit_hold sent, queued behind the long script
        create.cancel()
        with pytest.raises(asyncio.CancelledError):
            await create
        await busy
        await stuck
    finally:
        await other.aclose()
        await probe.aclose()
    # the request is over (whatever Redis made of it); a retry, after the "retry shortly"
    # pause, gets the one hold
    await asyncio.sleep(0.2)
    try:
        hold = await engine.create(block, 2, owner="u1", client="u1", idempotency_key="k")
    except errors.TooManyHolds:
        pytest.fail("the owner's slot is taken by a hold that does not exist")
    assert hold.status == "active"
    assert meta(redis_client, block)["held"] == "2"


async def test_retry_after_the_block_went_off_sale_returns_the_same_hold(
    redis_client: redis.Redis, aredis_client: aredis.Redis
) -> None:
    """A retry with the same Idempotency-Key returns the hold it made, whatever happened to
    the block since: it never drops a live hold from the owner's count, nor makes a
    second one. Found at b21bc8b: a retry while the block was off sale got NotOnSale from
    create_hold, and HoldEngine.create then forgot the key and the owner's slot of the
    live hold; the retry after it went back on sale made a second hold."""
    engine = make_engine(aredis_client, max_active=1)
    block = load_reserved(redis_client, 2, 10)
    hold = await engine.create(block, 2, owner="u1", client="u1", idempotency_key="k")

    blocks.load_block(redis_client, reserved_spec(block, 2, 10, active=False))
    try:
        again = await engine.create(block, 2, owner="u1", client="u1", idempotency_key="k")
    except errors.NotOnSale:
        pass
    else:
        assert again.hold_id == hold.hold_id

    blocks.load_block(redis_client, reserved_spec(block, 2, 10, active=True))
    # the live hold still counts against the owner's cap of one ...
    with pytest.raises(errors.TooManyHolds):
        await engine.create(block, 1, owner="u1", client="u1", idempotency_key="k2")
    # ... and the retry returns it
    again = await engine.create(block, 2, owner="u1", client="u1", idempotency_key="k")
    assert again.hold_id == hold.hold_id
    assert meta(redis_client, block)["held"] == "2", "two holds for one Idempotency-Key"


def test_a_keyed_hold_id_is_never_reused() -> None:
    """A hold id names one hold for good (orders.hold_id is unique). Keyed ids change every
    IDEMPOTENCY_WINDOW_S, and a hold's record outlives the window its key was used in (a
    hold lasts minutes, its tombstone TOMBSTONE_MS after it ends), so the same key in the
    same window always finds its hold instead of making a new one under the same id."""
    assert TOMBSTONE_MS >= IDEMPOTENCY_WINDOW_S * 1000
    block = keys.BlockKeys(DAY, "ids")
    ids = [new_hold_id(block, client="u1", idempotency_key="k", secret=b"s", window=w)
           for w in range(100)]
    assert len(set(ids)) == 100
    assert new_hold_id(block, client="u2", idempotency_key="k", secret=b"s") != \
        new_hold_id(block, client="u1", idempotency_key="k", secret=b"s")


async def test_a_retry_across_the_hour_returns_the_same_hold(
    redis_client: redis.Redis, aredis_client: aredis.Redis
) -> None:
    """The first attempt's id is from the previous window; the retry finds it there."""
    engine = make_engine(aredis_client)
    block = load_reserved(redis_client, 2, 10)
    previous = int(time.time()) // IDEMPOTENCY_WINDOW_S - 1
    old_id = new_hold_id(block, client="u1", idempotency_key="k", secret=engine.id_secret,
                         window=previous)
    first = scripts.run(redis_client, "create_hold", block_keys(block),
                        [old_id, 2, 600_000, "u1", "u1", 0, "hold", 200, 4, 0, 0, ""])
    assert int(first[0]) == 1
    retry = await engine.create(block, 2, owner="u1", client="u1", idempotency_key="k")
    assert retry.hold_id == old_id
    assert meta(redis_client, block)["held"] == "2"
