"""Invariants 4 and 5 for an order of wheelchair seats paid late, under real concurrency:
the hold ended before the payment arrived, so its seats went back to being withheld ('W',
'C'), and eight finalisations of the order run at the same moment. `sell_hold.lua`
re-takes the withheld pair exactly once: one set of tickets, the withheld counter down by
the pair once, never a general seat."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import redis
from sqlalchemy import Engine

from amphi.settings import Settings
from ledger.models import OrderStatus
from services import finalize
from tests.api._support import DAY, data, set_accessible_seats
from tests.payments._support import (
    CREATE_HOLD,
    SUCCEEDED,
    assert_block_matches_ledger,
    block_of,
    block_state,
    checkout,
    one_set_of_tickets,
    stripe_event_count,
)
from tests.payments.test_late_payment import TTL, let_holds_expire
from workers import jobs

SECTION = "Mezzanine Left"  # 20 rows (A-T) of 30 seats
PAIRS = "T15+T16, T1+T2"  # T15+T16 nearer the centre: the pair a first hold gets
FINALISATIONS = 8


def meta_int(client: redis.Redis, section: str, field: str) -> int:
    return int(client.hget(block_of(section).meta, field) or 0)


async def test_a_late_accessible_order_finalised_eight_times_at_once(
    open_api, demo_settings: Settings, venue, redis_client: redis.Redis,
    ledger_engine: Engine, worker,
) -> None:
    set_accessible_seats(ledger_engine, redis_client, venue, SECTION, PAIRS)
    block = block_of(SECTION)
    async with open_api(demo_settings, hold_ttl_seconds=TTL) as api:
        hold = data(await api.post(CREATE_HOLD, json={
            "section_id": venue.sections[SECTION], "event_date": DAY, "accessible": 1}), 201)
        pair = block_state(redis_client, block).indices("H")
        assert len(pair) == 2 and meta_int(redis_client, SECTION, "withheld") == 2
        order = await checkout(api, hold["hold_id"])
        await let_holds_expire(redis_client)  # swept: the pair is withheld again
    state = block_state(redis_client, block)
    assert (state.held, state.at(pair)) == (0, "WC")
    assert meta_int(redis_client, SECTION, "withheld") == 4

    worker.use(demo_settings)
    deps = jobs.deps()
    barrier = threading.Barrier(FINALISATIONS)
    event = finalize.StripeEventRef("evt_accessible_late_same_event", SUCCEEDED)

    def run() -> OrderStatus:
        barrier.wait(5)
        return finalize.finalize_order(deps, uuid.UUID(order["order_id"]), event=event)

    with ThreadPoolExecutor(FINALISATIONS) as pool:
        statuses = list(pool.map(lambda _: run(), range(FINALISATIONS)))
    assert statuses == [OrderStatus.COMPLETED] * FINALISATIONS
    tickets = one_set_of_tickets(ledger_engine, order["order_id"], 2)
    assert sorted(t["seat_index"] for t in tickets) == pair  # its own pair, re-taken
    assert stripe_event_count(ledger_engine, event.id) == 1
    state = assert_block_matches_ledger(redis_client, ledger_engine, SECTION)
    assert (state.held, state.sold, state.at(pair)) == (0, 2, "SS")
    # the other pair is still withheld, and counted once
    assert meta_int(redis_client, SECTION, "withheld") == 2
    assert len(state.indices("W")) + len(state.indices("C")) == 2
