"""Fault drills of the purchase path: a real fault during a burst of paid webhooks, then
proof that every paid order completed exactly once, with the seats its fan held.

Each drill runs the real app in-process (behind httpx), a real `amphi worker --processes
2` pool in a subprocess (RQ's WorkerPool of AmphiWorkers, with its scheduler and cron) and
delivers a few hundred signed `payment_intent.succeeded` webhooks concurrently. The faults:

1. a pool worker SIGKILLed in the middle of a finalisation job (after its Redis sale
   replay and its tickets' INSERTs, before its COMMIT);
2. PostgreSQL stopped for 20 s (`pg_ctl stop -m fast`) and started again; and, before any
   payment, stopped for 10 s while fans check out (no webhooks there: nothing half-written);
3. the queue's Redis (a server of its own, append-only file fsynced on every write) shut
   down for ~6 s and started again in the same directory, while a finalisation is in
   flight.

Webhooks answer 200 (queued) or, during an outage, 503; a 503'd webhook is delivered again
afterwards, as Stripe does, and none may answer 500 or hang. Afterwards
(tests/faults/_support.py assert_each_paid_order_completed_once): every order
`completed`, one set of tickets each on exactly the seats its fan held, each Stripe event
recorded once, each block's sold seats exactly the ledger's tickets, no finalisation or
email job failed, queued or waiting for a retry; every confirmation email sent; and
`amphi reconcile` finds no drift.

Each drill prints what it saw (`pytest -s`): statuses, retried and abandoned jobs, the
pool's workers before and after, processes that outlived the pool.

The servers a drill stops are its own: PostgreSQL in a temporary directory on a free port,
redis-server on a free port; the machine's shared servers are never stopped.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
import pytest
import redis
from rq import Queue
from rq.job import Job
from sqlalchemy import Engine

from amphi.settings import Settings
from services import queueing
from tests.api._support import build_venue, running_api
from tests.faults._support import (
    Delivery,
    HeldFan,
    HeldJob,
    Purchase,
    RestartableRedis,
    WorkerPool,
    abandoned_jobs,
    assert_each_paid_order_completed_once,
    assert_every_confirmation_sent,
    assert_reconcile_clean,
    blocked_finalisations,
    buy_many,
    completed_count,
    deliver_timed,
    drill_ledger,
    find_held_job,
    hold_many,
    postgres_missing,
    redeliver_until_accepted,
    redis_server_missing,
    retried_jobs,
    stripe_event_blocker,
    wait_for,
    wait_until_settled,
)
from tests.payments._support import (
    CHECKOUT,
    WEBHOOK_SECRET,
    assert_block_matches_ledger,
    checkout_body,
    confirm,
    one_set_of_tickets,
    order_lines,
    scalar,
    seat_indices,
)

pytestmark = pytest.mark.slow

RESERVED = ("Orchestra Center", "Terrace", "Mezzanine Center")
GENERAL = ("Lawn",)
SETTLE_SECONDS = 150  # a killed worker's job is retried up to ~60 s after it started
MAX_WEBHOOK_SECONDS = 15  # no webhook may hang, whatever is down
PG_DOWN_SECONDS = 20
# ~5 s, and longer than the cron's sweep interval (5 s): every process that uses the queue's
# Redis (API, workers, their schedulers, the cron) meets the outage, whatever the phase.
RQ_DOWN_SECONDS = 6
# The worker's own promise (workers/queues.py): a job abandoned by a dead worker is retried
# ~40 s after it started, noticed within 15 s; this is twice that.
RQ_SETTLE_SECONDS = 120

T = TypeVar("T")


def webhook_settings(settings: Settings, **changes: object) -> Settings:
    """Demo payments (no Stripe key), signed webhooks."""
    return settings.replace(stripe_webhook_secret=WEBHOOK_SECRET, **changes)


def summary(name: str, **facts: object) -> None:
    """What the drill saw, for `pytest -s` and for a failure's report."""
    print(f"\n[{name}] " + ", ".join(f"{k}={v}" for k, v in facts.items()))


class Burst:
    """Deliveries of webhooks, at most `concurrency` in flight, as tasks of the running
    loop: the test goes on (and injects its fault) while they are answered."""

    def __init__(self, api: httpx.AsyncClient, concurrency: int) -> None:
        self.api = api
        self.gate = asyncio.Semaphore(concurrency)
        self.tasks: list[asyncio.Task[Delivery]] = []
        self.answered = 0

    def send(self, purchases: Sequence[Purchase]) -> None:
        for p in purchases:
            self.tasks.append(asyncio.create_task(self._one(p)))

    async def _one(self, purchase: Purchase) -> Delivery:
        async with self.gate:
            delivery = await deliver_timed(self.api, purchase.event)
        self.answered += 1
        return delivery

    async def trickle(self, purchases: Sequence[Purchase], seconds: float) -> None:
        """Send `purchases` evenly over `seconds`."""
        for p in purchases:
            self.send([p])
            await asyncio.sleep(seconds / max(1, len(purchases)))

    async def until_answered(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.answered < count:
            assert time.monotonic() < deadline, f"{self.answered} of {count} webhooks answered"
            await asyncio.sleep(0.02)

    async def results(self) -> list[Delivery]:
        return list(await asyncio.gather(*self.tasks))


async def settle_burst(api: httpx.AsyncClient, burst: Any, purchases: Sequence[Any],
                       facts: dict[str, Any]) -> list[Delivery]:
    """The burst's first answers (each 200 or 503), then every 503'd webhook delivered
    again until accepted, as Stripe does; what happened goes into `facts`."""
    first = await burst.results()
    refused = [p for p, d in zip(purchases, first, strict=True) if d.status == 503]
    facts.update(orders=len(purchases), first_200=len(first) - len(refused),
                 first_503=len(refused),
                 slowest_webhook_s=round(max(d.seconds for d in first), 2))
    assert_only_queued_or_unavailable(first)
    retries = await redeliver_until_accepted(api, [p.event for p in refused])
    facts.update(redeliveries=len(retries),
                 redelivered_503=sum(d.status == 503 for d in retries))
    assert_only_queued_or_unavailable(retries)
    return first


def assert_only_queued_or_unavailable(deliveries: Sequence[Delivery]) -> None:
    """200 (queued) or 503 (retry later): never a 500, never a hang."""
    statuses = {d.status for d in deliveries}
    assert statuses <= {200, 503}, [d.body for d in deliveries if d.status not in (200, 503)]
    slowest = max(d.seconds for d in deliveries)
    assert slowest < MAX_WEBHOOK_SECONDS, f"a webhook took {slowest:.1f}s"


async def in_thread(fn: Callable[..., T], *args: object) -> T:
    """`fn(*args)` in a thread: the app (in this loop) goes on answering meanwhile."""
    return await asyncio.to_thread(fn, *args)


async def hold_a_finalisation(pool: WorkerPool, queue: Queue, engine: Engine,
                              target: Purchase) -> HeldJob:
    """The finalisation job carrying `target`, waiting in its transaction (see
    stripe_event_blocker) in a busy worker of the pool."""
    return await in_thread(
        wait_for, "a finalisation job held mid-transaction in a pool worker",
        lambda: find_held_job(pool, queue, engine, target.order_id), 60, 0.05)


# -- 1. a worker killed mid-job -----------------------------------------------------------------
async def test_a_worker_killed_mid_job_loses_no_order(
    open_api, demo_settings: Settings, venue, redis_client: redis.Redis,
    ledger_engine: Engine, queue: Queue, tmp_path: Path,
) -> None:
    """A pool worker SIGKILLed while its finalisation job is inside its transaction (the
    batch's seats re-sold in Redis, its tickets inserted, not committed): the pool starts a
    new worker, RQ retries the abandoned job once its heartbeat lapses, and every paid order
    of the burst (those of the killed batch included) completes exactly once and gets its
    confirmation email."""
    settings = webhook_settings(demo_settings)
    pool = WorkerPool(settings, tmp_path / "worker.log")
    started, facts = time.monotonic(), dict[str, object]()
    try:
        pool.start()
        before = {w.pid for w in await in_thread(pool.wait_ready, queue.connection)}
        async with open_api(settings) as api:
            purchases = await buy_many(api, settings, ledger_engine, redis_client,
                                       venue.sections, 240, reserved=RESERVED,
                                       general=GENERAL)
            target = purchases[30]  # an early webhook of the burst
            burst = Burst(api, concurrency=48)
            with stripe_event_blocker(ledger_engine, target.event_id):
                burst.send(purchases)
                held = await hold_a_finalisation(pool, queue, ledger_engine, target)
                victim = psutil.Process(held.worker.pid)
                assert victim.ppid() == pool.main.pid and held.worker.pid in before
                victim.send_signal(signal.SIGKILL)
                killed_at = time.monotonic()
                await in_thread(victim.wait, 10)
                facts.update(orders=len(purchases), killed_pid=held.worker.pid,
                             killed_batch=held.orders, answered_when_killed=burst.answered)
                # the dead job's transaction never committed
                assert completed_count(ledger_engine, [target]) == 0
            # the blocker is gone: the dead job's backend finds its client gone and aborts
            await in_thread(wait_for, "the killed job's backend to end",
                            lambda: not blocked_finalisations(ledger_engine), 20)
            deliveries = await burst.results()
        assert [d.status for d in deliveries] == [200] * len(purchases)
        assert_only_queued_or_unavailable(deliveries)

        # the pool replaced its dead worker
        after = await in_thread(
            wait_for, "the pool to respawn a worker",
            lambda: (w if (w := pool.ready(queue.connection)) and len(w) == len(before)
                     and held.worker.pid not in {x.pid for x in w} else None), 30, 0.3)
        facts["respawned"] = respawned = sorted({w.pid for w in after} - before)
        assert respawned, (before, after)

        facts["settle_s"] = round(await in_thread(
            wait_until_settled, ledger_engine, queue.connection, purchases, SETTLE_SECONDS), 1)
        facts["settled_s_after_kill"] = round(time.monotonic() - killed_at, 1)
        assert_each_paid_order_completed_once(ledger_engine, redis_client, queue.connection,
                                              purchases)
        await in_thread(assert_every_confirmation_sent, ledger_engine, purchases)
        await in_thread(assert_reconcile_clean, settings)
        # the killed job itself was retried, and finished
        facts["retried_jobs"] = retried = retried_jobs(queue.connection)
        job = Job.fetch(held.job_id, connection=queue.connection)
        assert job.get_status() == "finished", job.get_status()
        assert retried.get(held.job_id, 0) >= 1, retried
    finally:
        pool.stop()
        summary("worker killed", **facts, leftovers=pool.leftovers,
                total_s=round(time.monotonic() - started, 1))


# -- 2. PostgreSQL stopped for 20 s -------------------------------------------------------------
async def test_postgres_down_for_20s_loses_no_order(
    demo_settings: Settings, redis_client: redis.Redis, rq_redis: redis.Redis,
    tmp_path: Path,
) -> None:
    """PostgreSQL (a cluster of the test's own) stopped for 20 s in the middle of a burst:
    the webhooks that reached the ledger before it went are queued (200), the others are
    refused with 503 at once (none hangs, none is a 500); jobs that failed meanwhile are
    retried; once it is back the refused webhooks are delivered again and every paid order
    completes exactly once and gets its confirmation email."""
    if why := postgres_missing():
        pytest.skip(f"no private PostgreSQL: {why}")
    started, facts = time.monotonic(), dict[str, object]()
    with drill_ledger() as (pg, url, engine):
        settings = webhook_settings(demo_settings, database_url=url)
        pool = WorkerPool(settings, tmp_path / "worker.log")
        try:
            venue = build_venue(engine, redis_client)
            pool.start()
            await in_thread(pool.wait_ready, rq_redis)
            async with running_api(settings) as api:
                purchases = await buy_many(api, settings, engine, redis_client,
                                           venue.sections, 200, reserved=RESERVED,
                                           general=GENERAL)
                early, late = purchases[:80], purchases[80:]
                burst = Burst(api, concurrency=16)
                burst.send(early)
                await burst.until_answered(20)
                await in_thread(pg.stop, "fast")
                down_at = time.monotonic()
                await burst.trickle(late, PG_DOWN_SECONDS - 2)
                await asyncio.sleep(max(0.0, PG_DOWN_SECONDS - (time.monotonic() - down_at)))
                await in_thread(pg.start)
                up_at = time.monotonic()
                first = await settle_burst(api, burst, purchases, facts)
            # a webhook sent while the database was surely down was refused
            sent_while_down = [d for d in first
                               if d.answered - d.seconds > down_at + 1 and d.answered < up_at]
            assert sent_while_down and {d.status for d in sent_while_down} == {503}
            assert any(d.status == 200 for d in first), "nothing was queued before the outage"

            facts["settle_s"] = round(await in_thread(
                wait_until_settled, engine, rq_redis, purchases, SETTLE_SECONDS), 1)
            assert_each_paid_order_completed_once(engine, redis_client, rq_redis, purchases)
            await in_thread(assert_every_confirmation_sent, engine, purchases)
            await in_thread(assert_reconcile_clean, settings)
            facts["retried_jobs"] = retried = len(retried_jobs(rq_redis))
            # the jobs that failed meanwhile are warning lines, not tracebacks
            log = (tmp_path / "worker.log").read_text()
            assert "Traceback" not in log, log[-3000:]
            assert not retried or "job failed: a dependency is unreachable" in log, log[-3000:]
        finally:
            pool.stop()
            summary("postgres down", **facts, leftovers=pool.leftovers,
                    total_s=round(time.monotonic() - started, 1))


# -- 2b. PostgreSQL stopped while fans check out ---------------------------------------------
CHECKOUT_DOWN_SECONDS = 10


async def test_postgres_down_mid_checkout_writes_nothing_half(
    demo_settings: Settings, redis_client: redis.Redis, tmp_path: Path,
) -> None:
    """PostgreSQL stopped for 10 s while 150 fans who hold seats check out: each checkout
    answers 200 (its order written) or 503 at once (none hangs, none is a 500); the holds
    survive (they live in Redis); once the database is back, every refused fan checks out
    again and gets one order for their hold, with all its lines, and a fan whose answer was
    lost gets the same order again; every order then pays (demo confirm) and completes with
    exactly its held seats; reconcile finds no drift."""
    if why := postgres_missing():
        pytest.skip(f"no private PostgreSQL: {why}")
    started, facts = time.monotonic(), dict[str, object]()
    with drill_ledger() as (pg, url, engine):
        settings = demo_settings.replace(database_url=url)
        try:
            venue = build_venue(engine, redis_client)
            async with running_api(settings) as api:
                fans = await hold_many(api, settings, redis_client, venue.sections, 150,
                                      reserved=RESERVED)
                gate = asyncio.Semaphore(16)

                async def check_out(fan: HeldFan) -> tuple[int, float, float, str]:
                    async with gate:
                        began = time.monotonic()
                        resp = await api.post(CHECKOUT, json=checkout_body(fan.hold_id),
                                              headers=fan.headers)
                        return resp.status_code, began, time.monotonic(), resp.text

                tasks = [asyncio.create_task(check_out(f)) for f in fans[:40]]
                await asyncio.wait(tasks[:20])
                await in_thread(pg.stop, "fast")
                down_at = time.monotonic()
                for fan in fans[40:]:
                    tasks.append(asyncio.create_task(check_out(fan)))
                    await asyncio.sleep((CHECKOUT_DOWN_SECONDS - 2) / len(fans[40:]))
                first = await asyncio.gather(*tasks)
                await asyncio.sleep(max(0.0, CHECKOUT_DOWN_SECONDS - (time.monotonic() - down_at)))
                await in_thread(pg.start)
                up_at = time.monotonic()

                statuses = [status for status, *_ in first]
                assert set(statuses) <= {200, 503}, [t for s, *_, t in first if s not in (200, 503)]
                assert max(done - began for _, began, done, _ in first) < MAX_WEBHOOK_SECONDS
                assert 503 in [s for s, began, _, _ in first if began > down_at + 1]
                facts.update(fans=len(fans), first_200=statuses.count(200),
                             first_503=statuses.count(503))

                # the refused fans retry, as the app tells them to; the others' answers are
                # asked for again, as by a fan whose answer was lost
                orders: dict[str, str] = {}
                for fan, (status, *_, text) in zip(fans, first, strict=True):
                    if status == 200:
                        orders[fan.hold_id] = json.loads(text)["data"]["order_id"]
                retried = 0
                while len(orders) < len(fans) or not retried:
                    for fan in fans:
                        resp = await api.post(CHECKOUT, json=checkout_body(fan.hold_id),
                                              headers=fan.headers)
                        assert resp.status_code in (200, 503), resp.text
                        if resp.status_code == 200:
                            order_id = resp.json()["data"]["order_id"]
                            assert orders.setdefault(fan.hold_id, order_id) == order_id
                            facts.setdefault("checkout_back_s", round(time.monotonic() - up_at, 1))
                    retried += 1
                    assert time.monotonic() - up_at < 30, f"{len(orders)} of {len(fans)} orders"
                    await asyncio.sleep(0.2)
                # one order per hold, each with all its lines: nothing half-written
                assert scalar(engine, "SELECT count(*) FROM orders") == len(fans)
                for fan in fans:
                    assert len(order_lines(engine, orders[fan.hold_id])) == fan.quantity, fan

                paid = await asyncio.gather(*(confirm(api, orders[f.hold_id], headers=f.headers)
                                              for f in fans))
                assert [r.status_code for r in paid] == [200] * len(fans), \
                    [r.text for r in paid if r.status_code != 200][:3]
            for fan in fans:
                tickets = one_set_of_tickets(engine, orders[fan.hold_id], fan.quantity)
                assert tuple(seat_indices(tickets)) == fan.seats, (fan, tickets)
            for section in RESERVED:
                assert_block_matches_ledger(redis_client, engine, section)
            await in_thread(assert_reconcile_clean, settings)
        finally:
            summary("postgres down mid-checkout", **facts,
                    total_s=round(time.monotonic() - started, 1))


# -- 3. the queue's Redis restarted -------------------------------------------------------------
async def test_queue_redis_restarted_loses_no_order(
    open_api, demo_settings: Settings, venue, redis_client: redis.Redis,
    ledger_engine: Engine, tmp_path: Path,
) -> None:
    """RQ's Redis (a server of the test's own, its append-only file fsynced on every write)
    shut down for ~6 s in the middle of a burst, while a finalisation job is inside its
    transaction, and started again in the same directory: the webhooks answer 200 (queued:
    the job survives the restart) or 503 (delivered again afterwards); the worker pool
    carries on (or respawns its workers); every paid order completes exactly once, within
    twice the time the worker promises for a job whose worker died, and gets its
    confirmation email."""
    if why := redis_server_missing():
        pytest.skip(f"no redis-server for the queue: {why}")
    started, facts = time.monotonic(), dict[str, object]()
    server = RestartableRedis(tmp_path / "rq-redis")
    pool: WorkerPool | None = None
    try:
        server.start()
        settings = webhook_settings(demo_settings, rq_redis_url=server.url)
        rq = redis.Redis.from_url(server.url)
        queue = Queue(queueing.DEFAULT, connection=rq)
        pool = WorkerPool(settings, tmp_path / "worker.log")
        pool.start()
        before = {w.pid for w in await in_thread(pool.wait_ready, rq)}
        facts.update(workers_before=sorted(before), cron_alive_before=pool.cron_alive())
        async with open_api(settings) as api:
            purchases = await buy_many(api, settings, ledger_engine, redis_client,
                                       venue.sections, 200, reserved=RESERVED,
                                       general=GENERAL)
            early, late = purchases[:80], purchases[80:]
            target = early[10]
            burst = Burst(api, concurrency=16)
            with stripe_event_blocker(ledger_engine, target.event_id):
                burst.send(early)
                held = await hold_a_finalisation(pool, queue, ledger_engine, target)
                await burst.until_answered(40)
                await in_thread(server.shutdown)
                down_at = time.monotonic()
            # released: the held job goes on while its queue's Redis is down
            await burst.trickle(late, RQ_DOWN_SECONDS - 1)
            await asyncio.sleep(max(0.0, RQ_DOWN_SECONDS - (time.monotonic() - down_at)))
            await in_thread(server.start)
            up_at = time.monotonic()
            first = await settle_burst(api, burst, purchases, facts)
            facts["held_batch"] = held.orders
        sent_while_down = [d for d in first
                           if d.answered - d.seconds > down_at + 0.5 and d.answered < up_at]
        assert sent_while_down and {d.status for d in sent_while_down} == {503}

        # the pool works again after the restart: its workers survived or were replaced
        after = {w.pid for w in await in_thread(pool.wait_ready, rq, 60, len(before))}
        facts.update(workers_after=sorted(after), cron_alive_after=pool.cron_alive())
        try:
            facts["settle_s"] = round(await in_thread(
                wait_until_settled, ledger_engine, rq, purchases, RQ_SETTLE_SECONDS), 1)
        finally:
            facts.update(retried_jobs=retried_jobs(rq),
                         abandoned_jobs_not_retried=abandoned_jobs(rq),
                         orders_not_completed=len(purchases) - completed_count(ledger_engine,
                                                                               purchases))
        assert_each_paid_order_completed_once(ledger_engine, redis_client, rq, purchases)
        await in_thread(assert_every_confirmation_sent, ledger_engine, purchases)
        await in_thread(assert_reconcile_clean, settings)
    finally:
        if pool is not None:
            pool.stop()
        server.close()
        summary("queue redis restarted", **facts,
                leftovers=pool.leftovers if pool else [],
                total_s=round(time.monotonic() - started, 1))
