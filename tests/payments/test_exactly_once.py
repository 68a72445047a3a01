"""Invariants 4 and 5 under real concurrency: one successful payment, one set of tickets,
whatever delivers it, however often, and after a worker died half-way."""

from __future__ import annotations

import asyncio
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import redis
from rq import Queue
from rq.job import Job
from sqlalchemy import Engine, text

from amphi.settings import Settings
from engine import sales
from ledger.models import OrderStatus
from services import finalize, queueing
from tests.api._support import data
from tests.payments._support import (
    SUCCEEDED,
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
from workers import jobs

ISSUED = {"status": "COMPLETED", "message": "Amphitheater tickets issued successfully"}


async def _paid_order(api, settings: Settings, venue, ledger_engine: Engine, section: str,
                      quantity: int) -> tuple[dict, dict]:
    """A Stripe-mode order whose card payment succeeded at localstripe; no webhook yet."""
    hold = await make_hold(api, venue.sections[section], quantity,
                           headers=bearer(settings, "buyer"))
    order = await checkout(api, hold["hold_id"], headers=bearer(settings, "buyer"))
    intent_id = order_row(ledger_engine, order["order_id"])["payment_intent_id"]
    return order, pay(stripe_client(settings.stripe_api_base), intent_id)


async def test_five_simultaneous_deliveries_then_concurrent_jobs(
    open_api, stripe_settings: Settings, venue, redis_client: redis.Redis,
    ledger_engine: Engine, queue: Queue, worker,
) -> None:
    async with open_api(stripe_settings) as api:
        order, intent = await _paid_order(api, stripe_settings, venue, ledger_engine,
                                          "Orchestra Center", 4)
        held = block_state(redis_client, block_of("Orchestra Center")).indices("H")
        event = stripe_event(intent)
        answers = await asyncio.gather(*[deliver(api, event) for _ in range(5)])
    for answer in answers:
        assert data(answer) == {"received": True, "handled": True}
    queued = queue.get_jobs()
    # every delivery was accepted and queued (batched: a job carries what arrived together);
    # the work is idempotent
    assert sum(len(job.args[0]) for job in queued) == 5
    assert {p[:3] for job in queued for p in job.args[0]} == {
        (order["order_id"], event["id"], SUCCEEDED)}

    # the five jobs' bodies at the same moment (as five worker processes would run them)...
    worker.use(stripe_settings)
    barrier = threading.Barrier(5)

    def perform(job: Job) -> str:
        barrier.wait(5)
        return job.func(*job.args, **job.kwargs)

    with ThreadPoolExecutor(5) as pool:
        five = [queued[i % len(queued)] for i in range(5)]
        assert list(pool.map(perform, five)) == [{order["order_id"]: "completed"}] * 5
    # ... and then each job once more, through a real RQ worker
    worker.run(stripe_settings)

    tickets = one_set_of_tickets(ledger_engine, order["order_id"], 4)
    assert [t["seat_index"] for t in tickets] == held
    assert stripe_event_count(ledger_engine, event["id"]) == 1
    counts = row_counts(ledger_engine)
    assert (counts["tickets"], counts["amphitheater_tickets"], counts["stripe_events"]) == \
        (8, 4, 1)
    assert order_row(ledger_engine, order["order_id"])["status"] == "completed"
    state = assert_block_matches_ledger(redis_client, ledger_engine, "Orchestra Center")
    assert (state.held, state.sold) == (0, 4)


async def test_webhook_jobs_racing_manual_confirms(
    open_api, stripe_settings: Settings, venue, redis_client: redis.Redis,
    ledger_engine: Engine, queue: Queue, worker,
) -> None:
    """The worker's job function and the confirm endpoint finalise the same order at the
    same moment, twice each; then the queued webhook jobs run as well."""
    worker.use(stripe_settings)  # the job functions read their Settings from the env
    async with open_api(stripe_settings) as api:
        order, intent = await _paid_order(api, stripe_settings, venue, ledger_engine,
                                          "Terrace", 3)
        event = stripe_event(intent)
        buyer = bearer(stripe_settings, "buyer")
        barrier = threading.Barrier(2)

        def job() -> str:
            barrier.wait(5)
            return jobs.finalize_order(order["order_id"], event["id"], SUCCEEDED)

        results = await asyncio.gather(
            asyncio.to_thread(job), asyncio.to_thread(job),
            confirm(api, order["order_id"], buyer), confirm(api, order["order_id"], buyer),
            deliver(api, event), deliver(api, event),
        )
    assert results[:2] == ["completed", "completed"]
    for answer in results[2:4]:
        assert data(answer) == {"order_number": order["order_number"], **ISSUED}
    worker.run(stripe_settings)  # the two webhook jobs (and the email)

    one_set_of_tickets(ledger_engine, order["order_id"], 3)
    assert stripe_event_count(ledger_engine, event["id"]) == 1
    assert row_counts(ledger_engine)["stripe_events"] == 1
    state = assert_block_matches_ledger(redis_client, ledger_engine, "Terrace")
    assert (state.held, state.sold) == (0, 3)


async def test_concurrent_finalisations_in_threads(
    open_api, demo_settings: Settings, venue, redis_client: redis.Redis,
    ledger_engine: Engine, email_queue: Queue, worker,
) -> None:
    """Eight `finalize_order` calls of one order, released together (demo payments), with
    the dependencies a worker builds."""
    async with open_api(demo_settings) as api:
        hold = await make_hold(api, venue.sections["Lawn"], 5)
        order = await checkout(api, hold["hold_id"])
    worker.use(demo_settings)
    deps = jobs.deps()
    barrier = threading.Barrier(8)
    event = finalize.StripeEventRef("evt_threads_same_event", SUCCEEDED)

    def run() -> OrderStatus:
        barrier.wait(5)
        return finalize.finalize_order(deps, uuid.UUID(order["order_id"]), event=event)

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: run(), range(8)))
    assert statuses == [OrderStatus.COMPLETED] * 8
    tickets = one_set_of_tickets(ledger_engine, order["order_id"], 5)
    assert {(t["row"], t["seat"], t["seat_index"]) for t in tickets} == {(None, None, None)}
    assert stripe_event_count(ledger_engine, event.id) == 1
    # one confirmation email, enqueued by the call that issued the tickets
    assert [job.args for job in email_queue.get_jobs()] == [([order["order_id"]],)]
    state = assert_block_matches_ledger(redis_client, ledger_engine, "Lawn")
    assert (state.held, state.sold) == (0, 5)


async def test_job_killed_between_redis_sale_and_ledger_commit(
    open_api, demo_settings: Settings, venue, redis_client: redis.Redis,
    ledger_engine: Engine, queue: Queue, worker,
) -> None:
    """A finalisation that died after `sell_hold.lua` and before its SQL commit left: the
    order paid, the seats sold in Redis, no tickets. Its retry must issue exactly those
    seats, once, and leave the counters alone."""
    async with open_api(demo_settings) as api:
        hold = await make_hold(api, venue.sections["Mezzanine Right"], 3)
        order = await checkout(api, hold["hold_id"])
    block = block_of("Mezzanine Right")
    preferred = [ln["seat_index"] for ln in order_lines(ledger_engine, order["order_id"])]
    # what the dead job had done: its first transaction, then the Redis sale
    with ledger_engine.begin() as conn:
        conn.execute(text("UPDATE orders SET status = 'paid', paid_at = now() WHERE id = :id"),
                     {"id": order["order_id"]})
    sale = sales.sell(redis_client, block, order_id=order["order_id"],
                      hold_id=hold["hold_id"], quantity=3, preferred=preferred)
    assert sale is not None and sale.mode == "hold" and sale.seats == preferred
    state = block_state(redis_client, block)
    assert (state.held, state.sold, state.at(preferred)) == (0, 3, "SSS")
    assert row_counts(ledger_engine)["tickets"] == 0

    # RQ retries the job
    queueing.enqueue_finalize(queue, uuid.UUID(order["order_id"]), "evt_retried", SUCCEEDED)
    worker.run(demo_settings)
    tickets = one_set_of_tickets(ledger_engine, order["order_id"], 3)
    assert [t["seat_index"] for t in tickets] == preferred
    assert order_row(ledger_engine, order["order_id"])["status"] == "completed"
    assert stripe_event_count(ledger_engine, "evt_retried") == 1
    state = assert_block_matches_ledger(redis_client, ledger_engine, "Mezzanine Right")
    assert (state.held, state.sold) == (0, 3)  # sold == tickets; the hold is not held
    # and once more, for good measure: nothing changes
    queueing.enqueue_finalize(queue, uuid.UUID(order["order_id"]), "evt_retried", SUCCEEDED)
    worker.run(demo_settings)
    one_set_of_tickets(ledger_engine, order["order_id"], 3)
    assert block_state(redis_client, block) == state
