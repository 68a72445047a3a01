"""Seats are secured when the payment succeeds, in the request that learns it: a queue
backlog can delay a paid fan's tickets, never cost their seats.

The webhook sells the hold's seats in Redis before it queues anything. With no worker
running (a backlog), the holds then pass their expiry, the sweeper runs, and other fans
hold in the same section at the same moment: none of them gets a paid seat, and when the
worker catches up every paid order completes with exactly the seats its fan held."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import redis
from rq import Queue
from sqlalchemy import Engine

from amphi.settings import Settings
from engine import blocks
from tests.api._support import data
from tests.payments._support import (
    WEBHOOK_SECRET,
    assert_block_matches_ledger,
    bearer,
    block_of,
    block_state,
    checkout,
    deliver,
    intent_of,
    make_hold,
    one_set_of_tickets,
    order_row,
    row_counts,
    stripe_event,
    stripe_event_count,
)

TTL = 2  # seconds a hold lasts here
SECTION = "Orchestra Left"
PAYERS = 24
LATECOMERS = 24
HANDLED = {"received": True, "handled": True}


def sweep_until(stop: threading.Event, client: redis.Redis) -> int:
    """The scheduled sweeper, as fast as it goes."""
    sweeps = 0
    while not stop.is_set():
        blocks.sweep(client)
        sweeps += 1
    return sweeps


async def test_a_backlog_never_costs_a_paid_fan_the_seats(
    open_api, demo_settings: Settings, venue, redis_client: redis.Redis,
    ledger_engine: Engine, queue: Queue, worker,
) -> None:
    settings = demo_settings.replace(stripe_webhook_secret=WEBHOOK_SECRET)
    block = block_of(SECTION)
    section_id = venue.sections[SECTION]
    async with open_api(settings, hold_ttl_seconds=TTL) as api:
        holds = await asyncio.gather(*[
            make_hold(api, section_id, 2, headers=bearer(settings, f"payer-{i}"))
            for i in range(PAYERS)])
        orders = await asyncio.gather(*[
            checkout(api, h["hold_id"], headers=bearer(settings, f"payer-{i}"))
            for i, h in enumerate(holds)])
        held = {o["order_id"]: sorted(_seat_indices(redis_client, block, h))
                for o, h in zip(orders, holds, strict=True)}
        before = block_state(redis_client, block)
        paid_seats = before.indices("H")
        assert before.held == 2 * PAYERS == len(paid_seats)

        events = [stripe_event(intent_of(ledger_engine, o, h["hold_id"], "succeeded"))
                  for o, h in zip(orders, holds, strict=True)]
        answers = await asyncio.gather(*[deliver(api, e) for e in events])
        assert [data(a) for a in answers] == [HANDLED] * PAYERS

        # Answered: every paid seat is sold in Redis, though no ticket exists yet
        secured = block_state(redis_client, block)
        assert secured.at(paid_seats) == "S" * len(paid_seats)
        assert (secured.held, secured.sold) == (0, 2 * PAYERS)
        assert row_counts(ledger_engine)["tickets"] == 0
        assert sum(len(job.args[0]) for job in queue.get_jobs()) == PAYERS  # the backlog

        # The holds pass their expiry while queued; the sweeper runs the whole time, and
        # other fans hold in the same section at the same moment.
        await asyncio.sleep(TTL + 0.5)
        stop = threading.Event()
        sweeper = asyncio.create_task(asyncio.to_thread(sweep_until, stop, redis_client))
        try:
            latecomers = await asyncio.gather(*[
                make_hold(api, section_id, 2, headers=bearer(settings, f"late-{i}"))
                for i in range(LATECOMERS)])
        finally:
            stop.set()
            assert await sweeper > 0
        taken = {i for h in latecomers for i in _seat_indices(redis_client, block, h)}
        assert len(taken) == 2 * LATECOMERS
        assert not taken & set(paid_seats), "a paid seat was given to another fan"

    worker.run(settings)  # the backlog drains
    tickets = {o["order_id"]: one_set_of_tickets(ledger_engine, o["order_id"], 2)
               for o in orders}
    for order_id, seats in held.items():  # exactly the seats each fan held
        assert sorted(t["seat_index"] for t in tickets[order_id]) == seats
    assert sorted(i for seats in held.values() for i in seats) == paid_seats
    for order, event in zip(orders, events, strict=True):
        assert order_row(ledger_engine, order["order_id"])["status"] == "completed"
        assert stripe_event_count(ledger_engine, event["id"]) == 1
    state = assert_block_matches_ledger(redis_client, ledger_engine, SECTION)
    assert state.sold == 2 * PAYERS


def _seat_indices(client: redis.Redis, block: Any, hold: dict[str, Any]) -> list[int]:
    """The seats a hold has, from its record in Redis."""
    raw = client.hget(block.records, hold["hold_id"])
    assert raw is not None
    return json.loads(raw)["seats"]
