"""Invariant 6 end to end: Redis loses everything (FLUSHALL, on a redis-server of this
module's own), `amphi reconcile --fix` (the real console script) rebuilds every block from
the ledger, and then a spike of concurrent holds from several processes on a nearly
sold-out section never gets a ticketed seat.

The control: blocks reloaded empty after the flush (what a naive restart does) hand a
ticketed seat to the very first hold, so the checks below can see the failure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
import redis
from sqlalchemy import Engine

from amphi.keys import BlockKeys
from amphi.settings import Settings
from engine.blocks import load_block
from tests._servers import private_redis
from tests.api._support import DAY, VenueFixture
from tests.engine import _race_worker
from tests.engine._support import assert_block_ok, engine_client, make_engine
from tests.ops._support import BLOCKS, CLEAN, FIXED, assert_agrees, buy, reconcile
from tests.payments._support import block_of, block_state, rows

pytestmark = pytest.mark.slow

PROCESSES = 2
RESERVED_PER_PROCESS = 200  # qty 1-8 each: ~900 seats asked of the ~470 left
GA_PER_PROCESS = 60
SECTION, GA = "Mezzanine Left", "Lawn"  # 600 reserved seats; general admission
BUYERS = 16  # 8 seats each, in the section's best rows


@pytest.fixture(scope="session")  # as the one it overrides, which session fixtures use
def settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """This module's Redis is a server of its own, so that the test can FLUSHALL it."""
    with private_redis(tmp_path_factory.mktemp("redis")) as port:
        yield settings.replace(redis_url=f"redis://127.0.0.1:{port}/0")


@pytest.fixture(scope="module")
def racers() -> Iterator[tuple[ProcessPoolExecutor, Any]]:
    with _race_worker.race_pool(PROCESSES) as pool:
        yield pool


def ticketed(engine: Engine, block: BlockKeys) -> set[int]:
    found = rows(engine, """
        SELECT a.seat_index FROM amphitheater_tickets a JOIN sections s ON s.id = a.section_id
        WHERE s.slug = :slug AND a.event_date = :day AND a.status = 'issued'""",
                 slug=block.section, day=block.event_date)
    return {r["seat_index"] for r in found}


async def hold_once(url: str, block: BlockKeys, quantity: int) -> list[int]:
    client = engine_client(url)
    try:
        hold = await make_engine(client).create(block, quantity, owner="", client="control")
    finally:
        await client.aclose()
    return hold.seats


async def test_flush_then_fix_then_a_spike_never_sells_twice(
        open_api, settings: Settings, venue: VenueFixture, redis_client: redis.Redis,
        ledger_engine: Engine, racers: tuple[ProcessPoolExecutor, Any]) -> None:
    async with open_api() as api:
        for n in range(BUYERS):
            await buy(api, settings, venue.sections[SECTION], 8, f"early-{n}")
        for n in range(3):
            await buy(api, settings, venue.sections[GA], 8, f"lawn-{n}")
    block, ga = block_of(SECTION), block_of(GA)
    sold = ticketed(ledger_engine, block)
    assert len(sold) == BUYERS * 8 and block_state(redis_client, block).sold == len(sold)

    # The control: what a restart that reloads the blocks without the ledger would do.
    redis_client.flushall()
    assert load_block(redis_client, venue.specs[f"{DAY}|{block.section}"]) == "created"
    grabbed = await hold_once(settings.redis_url, block, 8)
    assert set(grabbed) <= sold, "the control should hand out ticketed seats"

    # The real recovery: everything lost, then the operator's command.
    redis_client.flushall()
    fixed = reconcile(settings, "--fix")
    assert (fixed.code, fixed.verdict) == (0, FIXED), fixed.out
    assert fixed.out.count("missing_block -> fixed") == BLOCKS, fixed.out
    for section in (SECTION, GA):
        assert_agrees(redis_client, ledger_engine, section, DAY)
    assert set(block_state(redis_client, block).indices("S")) == sold

    refs = ((block.event_date.isoformat(), block.section), (ga.event_date.isoformat(),
                                                            ga.section))
    reports = _race_worker.race(racers, _race_worker.engine_process,
                                [(settings.redis_url, *refs, p, RESERVED_PER_PROCESS,
                                  GA_PER_PROCESS, 4242 + p) for p in range(PROCESSES)],
                                timeout=120)
    results = [res for r in reports for res in r["results"]]
    assert not [res for res in results if res[0] == "error"], results

    outcome = Counter((res[0], res[1]) for res in results)
    assert outcome[("reserved", "sold_out")] + outcome[("reserved", "no_adjacent")] > 50, outcome
    assert outcome[("reserved", "held")] > 50, outcome
    given = [res for res in results if res[0] in ("reserved", "dup")
             and res[1] in ("held", "released")]
    assert len(given) > 100
    handed_sold = {i for res in given for i in res[4]} & sold
    assert not handed_sold, f"holds got ticketed seats {sorted(handed_sold)}"

    for b in (block, ga):
        assert_block_ok(redis_client, b)
    state = block_state(redis_client, block)
    assert set(state.indices("S")) == sold and state.sold == len(sold)
    # what the callers were told adds up to Redis' count: every seat held is one of theirs
    active = {res[3]: res[4] for res in given if res[1] == "held"}
    assert state.held == sum(map(len, active.values())) > 300, state
    assert block_state(redis_client, ga).sold == 24

    after = reconcile(settings)
    assert (after.code, after.verdict) == (0, CLEAN), after.out
