"""Inventory heals itself: the hold engine's Redis (a server of the test's own, without
persistence) restarts empty while fans hold seats. Meanwhile holds and sections answer 503
`inventory_unavailable` with Retry-After and /readyz is not ready; a real `amphi worker`
rebuilds every block from the ledger, sold seats first, within seconds, with a log line and
a metric; then fans hold again, and no hold ever gets a sold seat."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import Engine

from amphi.settings import Settings
from tests.api._support import BASE, DAY, VenueFixture, data, hold_body
from tests.faults._support import (
    RestartableRedis,
    WorkerPool,
    assert_reconcile_clean,
    redis_server_missing,
)
from tests.payments._support import (
    CREATE_HOLD,
    assert_block_matches_ledger,
    checkout,
    confirm,
    make_hold,
    one_set_of_tickets,
)

RECOVERY_SECONDS = 10  # the worker looks every second (SWEEP_INTERVAL_SECONDS=1)
SOLD = [("Orchestra Center", 4), ("Terrace", 2), ("Lawn", 3)]


async def readiness(api: httpx.AsyncClient) -> tuple[int, dict[str, str]]:
    resp = await api.get("/readyz")
    return resp.status_code, resp.json()["checks"]


async def wait_until(what: str, check, seconds: float) -> float:
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < seconds, f"{what}: not within {seconds} s"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


class Fans:
    """Fans holding 1-2 seats in every section, `concurrency` at a time, until stopped; each
    answer kept with its time."""

    def __init__(self, api: httpx.AsyncClient, sections: dict[str, str],
                 concurrency: int = 8) -> None:
        self.api, self.sections, self.concurrency = api, list(sections.values()), concurrency
        self.answers: list[tuple[float, int, str, httpx.Response]] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._fan(i)) for i in range(self.concurrency)]

    async def _fan(self, i: int) -> None:
        n = 0
        while not self._stop.is_set():
            section = self.sections[(i + n) % len(self.sections)]
            # each hold a fan of its own (its own address), so no hold cap or rate limit
            fan = {"X-Forwarded-For": f"10.{i}.{n // 250 % 250}.{n % 250 + 1}"}
            resp = await self.api.post(CREATE_HOLD, json=hold_body(section, 1 + n % 2),
                                       headers=fan)
            body = resp.json()
            code = "" if resp.status_code < 400 else body["error"]["code"]
            self.answers.append((time.monotonic(), resp.status_code, code, resp))
            n += 1
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


@pytest.mark.slow
async def test_inventory_heals_after_redis_restarts_empty(
        open_api, demo_settings: Settings, venue: VenueFixture, ledger_engine: Engine,
        rq_redis: redis.Redis, tmp_path: Path) -> None:
    if why := redis_server_missing():
        pytest.skip(f"no redis-server: {why}")
    server = RestartableRedis(tmp_path / "hold-redis", persistent=False)
    server.start()
    settings = demo_settings.replace(redis_url=server.url, sweep_interval_seconds=1)
    pool = WorkerPool(settings, tmp_path / "worker.log", processes=1)
    facts: dict[str, object] = {}
    try:
        pool.start()
        await asyncio.to_thread(pool.wait_ready, rq_redis)
        async with open_api(settings) as api:
            # The server started empty: the worker loads the venue by itself.
            facts["first_load_s"] = round(await wait_until(
                "the first load", lambda: _ready(api), RECOVERY_SECONDS), 1)
            orders = []
            for name, quantity in SOLD:
                hold = await make_hold(api, venue.sections[name], quantity)
                order = await checkout(api, hold["hold_id"], email=f"{quantity}@example.com")
                assert data(await confirm(api, order["order_id"]))["status"] == "COMPLETED"
                orders.append((order["order_id"], quantity))

            fans = Fans(api, venue.sections)
            fans.start()
            await asyncio.sleep(1)
            await asyncio.to_thread(server.shutdown)
            await asyncio.to_thread(server.start)  # empty: no persistence
            restarted = time.monotonic()
            status, checks = await readiness(api)
            assert status == 503 and "missing in Redis" in checks["inventory"], checks
            sections = await api.get(f"{BASE}/venues/{venue.id}/sections/",
                                     params={"event_date": DAY})
            facts["sections_while_lost"] = sections.status_code
            recovery = await wait_until("recovery", lambda: _ready(api), RECOVERY_SECONDS)
            facts["recovery_s"] = round(recovery, 2)
            await asyncio.sleep(1)  # fans hold in the restored blocks
            await fans.stop()

        statuses = Counter((status, code) for _, status, code, _ in fans.answers)
        facts["answers"] = dict(statuses)
        assert {s for s, _ in statuses} <= {201, 409, 503}, statuses  # never a 500
        unavailable = [r for t, s, _, r in fans.answers if s == 503]
        assert {r.json()["error"]["code"] for r in unavailable} <= {
            "inventory_unavailable", "service_unavailable"}
        lost = [r for t, s, code, r in fans.answers if code == "inventory_unavailable"]
        assert lost, statuses  # the fans were told, and when to retry
        assert all(r.headers["retry-after"] == "2" for r in lost)
        assert facts["sections_while_lost"] in (200, 503)  # 200 only if already restored
        after = [s for t, s, _, _ in fans.answers if t > restarted + recovery]
        assert 201 in after, statuses

        hold_redis = server.client()
        for name, _ in SOLD:  # sold seats are sold again, nothing held over them
            assert_block_matches_ledger(hold_redis, ledger_engine, name)
        for order_id, quantity in orders:
            one_set_of_tickets(ledger_engine, order_id, quantity)
        log = (tmp_path / "worker.log").read_text()
        assert "inventory restored from the ledger" in log
        metrics = (await _metrics(open_api, settings)).text
        assert _value(metrics, "amphi_inventory_restores_total") >= 2  # first load, restart
        assert _value(metrics, "amphi_inventory_blocks_restored_total") >= 2 * len(
            venue.specs)
        assert recovery < RECOVERY_SECONDS
        await asyncio.to_thread(assert_reconcile_clean, settings)
    finally:
        pool.stop()
        server.close()
        print(f"\n[inventory heals] {facts}")


async def _ready(api: httpx.AsyncClient) -> bool:
    status, _ = await readiness(api)
    if status != 200:
        return False
    return (await api.get(f"{BASE}/event-dates/")).status_code == 200


async def _metrics(open_api, settings: Settings) -> httpx.Response:
    async with open_api(settings) as api:
        return await api.get("/metrics")


def _value(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")
