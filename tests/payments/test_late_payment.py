"""Invariant 4, late payments: the hold expired while the fan was paying. Then the same
seats if still free, else the best available adjacent seats in the same section, else the
order is marked for refund (demo) or refunded (Stripe). Never oversold."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio as aredis
from sqlalchemy import Engine

from amphi.settings import Settings
from engine import blocks
from engine.holds import HoldEngine
from tests.api._support import data
from tests.payments._support import (
    SECTION,
    assert_block_matches_ledger,
    bearer,
    block_of,
    block_state,
    checkout,
    confirm,
    deliver,
    make_hold,
    one_set_of_tickets,
    order_lines,
    order_row,
    pay,
    row_counts,
    stripe_client,
    stripe_event,
    stripe_event_count,
)

TTL = 1  # seconds a hold lasts in these tests


def hold_engine(client: aredis.Redis, max_quantity: int = 8) -> HoldEngine:
    return HoldEngine(client, ttl_seconds=600, max_quantity=max_quantity,
                      max_active_per_owner=4, rate_limit_per_minute=0)


async def let_holds_expire(client: redis.Redis, *, sweep: bool = True) -> None:
    await asyncio.sleep(TTL + 0.3)
    if sweep:  # what the scheduled sweeper does every few seconds
        blocks.sweep(client)


@pytest.mark.parametrize("swept", [True, False], ids=["swept", "not-swept"])
async def test_expired_hold_same_seats_still_free(open_api, demo_settings: Settings, venue,
                                                  redis_client: redis.Redis,
                                                  ledger_engine: Engine, swept: bool) -> None:
    fan = bearer(demo_settings, "slow-payer")
    block = block_of("Orchestra Center")
    async with open_api(demo_settings, hold_ttl_seconds=TTL) as api:
        hold = await make_hold(api, venue.sections["Orchestra Center"], 2, headers=fan)
        seats = block_state(redis_client, block).indices("H")
        order = await checkout(api, hold["hold_id"], headers=fan)
        await let_holds_expire(redis_client, sweep=swept)
        if swept:
            state = block_state(redis_client, block)
            assert (state.held, state.at(seats)) == (0, "00")  # back on sale
        assert data(await confirm(api, order["order_id"], fan))["status"] == "COMPLETED"

    tickets = one_set_of_tickets(ledger_engine, order["order_id"], 2)
    assert [t["seat_index"] for t in tickets] == seats
    state = assert_block_matches_ledger(redis_client, ledger_engine, "Orchestra Center")
    assert (state.held, state.sold, state.at(seats)) == (0, 2, "SS")


async def test_expired_hold_seats_taken_moves_to_best_available(
    open_api, demo_settings: Settings, venue, redis_client: redis.Redis,
    aredis_client: aredis.Redis, ledger_engine: Engine,
) -> None:
    fan, rival = bearer(demo_settings, "slow-payer"), bearer(demo_settings, "rival")
    section = "Orchestra Center"
    spr = SECTION[section].seats_per_row
    block = block_of(section)
    async with open_api(demo_settings, hold_ttl_seconds=TTL) as api:
        hold = await make_hold(api, venue.sections[section], 3, headers=fan)
        seats = block_state(redis_client, block).indices("H")
        order = await checkout(api, hold["hold_id"], headers=fan)
        await let_holds_expire(redis_client)

    async with open_api(demo_settings) as api:  # holds last 10 minutes again
        rival_hold = await make_hold(api, venue.sections[section], 3, headers=rival)
        rival_seats = block_state(redis_client, block).indices("H")
        assert rival_seats == seats  # the rival got exactly the expired hold's seats
        best = (await hold_engine(aredis_client).check(block, 3)).seats  # what is best now

        assert data(await confirm(api, order["order_id"], fan))["status"] == "COMPLETED"
        tickets = one_set_of_tickets(ledger_engine, order["order_id"], 3)
        moved = [t["seat_index"] for t in tickets]
        assert not set(moved) & set(rival_seats)
        assert moved == best
        assert len({i // spr for i in moved}) == 1 and moved == list(range(moved[0],
                                                                         moved[0] + 3))
        # the order's lines now name the new seats (one_set_of_tickets compared them)
        assert [ln["seat_index"] for ln in order_lines(ledger_engine, order["order_id"])] == moved
        state = assert_block_matches_ledger(redis_client, ledger_engine, section)
        assert (state.held, state.sold, state.at(rival_seats), state.at(moved)) == \
            (3, 3, "HHH", "SSS")
        mine = data(await api.get("/api/tickets/amphitheater/my-tickets/", headers=fan))
        assert {(t["section"], t["row"], t["seat"]) for t in mine} == {
            (section, t["row"], t["seat"]) for t in tickets}

        # the rival pays as well: both parties seated, no seat sold twice
        rival_order = await checkout(api, rival_hold["hold_id"], headers=rival)
        assert data(await confirm(api, rival_order["order_id"], rival))["status"] == "COMPLETED"
    rival_tickets = one_set_of_tickets(ledger_engine, rival_order["order_id"], 3)
    assert [t["seat_index"] for t in rival_tickets] == rival_seats
    state = assert_block_matches_ledger(redis_client, ledger_engine, section)
    assert (state.held, state.sold) == (0, 6)


async def test_expired_hold_section_sold_out_demo_needs_refund(
    open_api, demo_settings: Settings, venue, redis_client: redis.Redis,
    aredis_client: aredis.Redis, ledger_engine: Engine,
) -> None:
    lawn = block_of("Lawn")
    async with open_api(demo_settings, hold_ttl_seconds=TTL) as api:
        hold = await make_hold(api, venue.sections["Lawn"], 2)
        order = await checkout(api, hold["hold_id"])
        await let_holds_expire(redis_client)
        # other fans take the whole lawn meanwhile
        await hold_engine(aredis_client, 1500).create(lawn, 1500, owner="crowd",
                                                      client="guest:crowd")
        answer = data(await confirm(api, order["order_id"]))
        assert answer["status"] == "REFUND_REQUIRED" and answer["message"]
        assert answer["order_number"] == order["order_number"]
        # asking again changes nothing
        assert data(await confirm(api, order["order_id"]))["status"] == "REFUND_REQUIRED"

    row = order_row(ledger_engine, order["order_id"])
    assert row["status"] == "refund_required" and row["failure_reason"]
    assert row_counts(ledger_engine)["tickets"] == 0
    state = assert_block_matches_ledger(redis_client, ledger_engine, "Lawn")
    assert (state.held, state.sold) == (1500, 0)  # never oversold


async def test_expired_hold_section_sold_out_stripe_refunds(
    open_api, stripe_settings: Settings, venue, redis_client: redis.Redis,
    aredis_client: aredis.Redis, ledger_engine: Engine, worker,
) -> None:
    sc = stripe_client(stripe_settings.stripe_api_base)
    section = "Orchestra Left"
    block = block_of(section)
    fan = bearer(stripe_settings, "too-late")
    async with open_api(stripe_settings, hold_ttl_seconds=TTL) as api:
        hold = await make_hold(api, venue.sections[section], 2, headers=fan)
        order = await checkout(api, hold["hold_id"], headers=fan)
        intent_id = order_row(ledger_engine, order["order_id"])["payment_intent_id"]
        await let_holds_expire(redis_client)
        # the whole section is held by others (reserved: seats need not be adjacent)
        filler = await hold_engine(aredis_client, 800).create(block, 800, owner="crowd",
                                                              client="guest:crowd",
                                                              allow_split=True)
        assert len(filler.seats) == 800
        event = stripe_event(pay(sc, intent_id))  # the card payment lands after all that
        assert data(await deliver(api, event))["handled"] is True
        worker.run(stripe_settings)

        row = order_row(ledger_engine, order["order_id"])
        assert row["status"] == "refunded"
        refunds = sc.v1.refunds.list(params={"payment_intent": intent_id}).data
        assert [(r.amount, r.status) for r in refunds] == [(20_000, "succeeded")]
        assert refunds[0].id in row["failure_reason"]
        assert stripe_event_count(ledger_engine, event["id"]) == 1
        assert row_counts(ledger_engine)["tickets"] == 0
        state = assert_block_matches_ledger(redis_client, ledger_engine, section)
        assert (state.held, state.sold) == (800, 0)

        # the event again, and a manual confirm: still one refund, no tickets
        assert data(await deliver(api, event))["handled"] is True
        worker.run(stripe_settings)
        assert data(await confirm(api, order["order_id"], fan))["status"] == "REFUNDED"
    assert len(sc.v1.refunds.list(params={"payment_intent": intent_id}).data) == 1
    assert row_counts(ledger_engine)["tickets"] == 0
    assert order_row(ledger_engine, order["order_id"])["status"] == "refunded"
