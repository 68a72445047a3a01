"""Stripe events out of order: a card declined and then accepted on the same intent (the fan
tried another card), a late failure event after success, and the failure and success jobs
of one order running at the same moment. Every successful payment ends with exactly one set
of tickets; a failure never undoes a completed order.

The orders are demo-mode orders (no Stripe call is needed for any of this) and the events
are built and signed here, with the webhook secret configured."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import redis
from rq import Queue
from sqlalchemy import Engine

from amphi.settings import Settings
from tests.api._support import data
from tests.payments._support import (
    SUCCEEDED,
    WEBHOOK_SECRET,
    assert_block_matches_ledger,
    block_of,
    block_state,
    checkout,
    confirm,
    deliver,
    intent_of,
    make_hold,
    one_set_of_tickets,
    order_row,
    row_counts,
    stripe_event,
    stripe_event_count,
)
from workers import jobs

FAILED = "payment_intent.payment_failed"
HANDLED = {"received": True, "handled": True}


async def test_declined_then_paid_on_the_same_intent(open_api, demo_settings: Settings, venue,
                                                     redis_client: redis.Redis,
                                                     ledger_engine: Engine, worker) -> None:
    settings = demo_settings.replace(stripe_webhook_secret=WEBHOOK_SECRET)
    block = block_of("Mezzanine Center")
    async with open_api(settings) as api:
        hold = await make_hold(api, venue.sections["Mezzanine Center"], 2)
        seats = block_state(redis_client, block).indices("H")
        order = await checkout(api, hold["hold_id"])
        declined = stripe_event(intent_of(ledger_engine, order, hold["hold_id"],
                                          "requires_payment_method"), FAILED)
        assert data(await deliver(api, declined)) == HANDLED
        worker.run(settings)
        assert order_row(ledger_engine, order["order_id"])["status"] == "failed"
        assert block_state(redis_client, block).at(seats) == "00"

        paid = stripe_event(intent_of(ledger_engine, order, hold["hold_id"], "succeeded"))
        assert data(await deliver(api, paid)) == HANDLED
        worker.run(settings)
    assert order_row(ledger_engine, order["order_id"])["status"] == "completed"
    tickets = one_set_of_tickets(ledger_engine, order["order_id"], 2)
    assert [t["seat_index"] for t in tickets] == seats  # still free: the same seats
    assert stripe_event_count(ledger_engine, declined["id"]) == 1
    assert stripe_event_count(ledger_engine, paid["id"]) == 1
    state = assert_block_matches_ledger(redis_client, ledger_engine, "Mezzanine Center")
    assert (state.held, state.sold) == (0, 2)


async def test_failure_event_after_success_changes_nothing(open_api, demo_settings: Settings,
                                                           venue, redis_client: redis.Redis,
                                                           ledger_engine: Engine,
                                                           worker) -> None:
    settings = demo_settings.replace(stripe_webhook_secret=WEBHOOK_SECRET)
    async with open_api(settings) as api:
        hold = await make_hold(api, venue.sections["Terrace"], 2)
        order = await checkout(api, hold["hold_id"])
        assert data(await confirm(api, order["order_id"]))["status"] == "COMPLETED"
        tickets = one_set_of_tickets(ledger_engine, order["order_id"], 2)
        late = stripe_event(intent_of(ledger_engine, order, hold["hold_id"],
                                      "requires_payment_method"), FAILED)
        assert data(await deliver(api, late)) == HANDLED
        worker.run(settings)
    row = order_row(ledger_engine, order["order_id"])
    assert (row["status"], row["failure_reason"]) == ("completed", "")
    assert one_set_of_tickets(ledger_engine, order["order_id"], 2) == tickets
    state = assert_block_matches_ledger(redis_client, ledger_engine, "Terrace")
    assert (state.held, state.sold) == (0, 2)


async def test_failure_and_success_jobs_race(open_api, demo_settings: Settings, venue,
                                             redis_client: redis.Redis, ledger_engine: Engine,
                                             queue: Queue, worker) -> None:
    """For several orders, the failure job and the success job start together."""
    sections = ["Orchestra Center", "Orchestra Left", "Orchestra Right", "Lawn"]
    async with open_api(demo_settings) as api:
        orders = []
        for name in sections:
            hold = await make_hold(api, venue.sections[name], 3)
            orders.append(await checkout(api, hold["hold_id"]))
    worker.use(demo_settings)
    barrier = threading.Barrier(2 * len(orders))

    def fail(order: dict) -> str:
        barrier.wait(10)
        return jobs.fail_order(order["order_id"], f"evt_fail_{order['order_number']}", FAILED,
                               "The payment failed.")

    def succeed(order: dict) -> str:
        barrier.wait(10)
        return jobs.finalize_order(order["order_id"], f"evt_ok_{order['order_number']}",
                                   SUCCEEDED)

    with ThreadPoolExecutor(2 * len(orders)) as pool:
        futures = [pool.submit(fn, order) for order in orders for fn in (fail, succeed)]
        outcomes = [f.result() for f in futures]
    assert set(outcomes[1::2]) == {"completed"}  # every success job issued (or found) tickets
    for order, name in zip(orders, sections, strict=True):
        assert order_row(ledger_engine, order["order_id"])["status"] == "completed"
        one_set_of_tickets(ledger_engine, order["order_id"], 3)
        state = assert_block_matches_ledger(redis_client, ledger_engine, name)
        assert (state.held, state.sold) == (0, 3)
    assert row_counts(ledger_engine)["stripe_events"] == 2 * len(orders)
