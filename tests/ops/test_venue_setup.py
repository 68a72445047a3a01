"""`amphi setup-venue`'s service: the venue, its sections, dates and blocks in the ledger,
every block loaded into Redis; run again, it creates nothing and refreshes every block; run
after Redis lost its data, it builds the blocks from the ledger with their sold seats sold."""

from __future__ import annotations

import subprocess

import redis
from rq import Queue
from sqlalchemy import Engine, text

from amphi.keys import BlockKeys
from amphi.payments import DemoGateway
from amphi.settings import Settings
from amphi.signing import load_signer
from ledger.db import session_factory
from ledger.venue_seed import SECTIONS
from services import queueing, reconcile
from services.venue import set_up_venue
from tests._servers import amphi_env
from tests.api._support import EVENT_DATES, EVENT_DAYS, LEDGER_TABLES, VenueFixture
from tests.engine._support import assert_block_ok
from tests.ops._support import AMPHI, REPO, buy
from tests.payments._support import assert_block_matches_ledger, rows

BLOCKS = len(SECTIONS) * len(EVENT_DATES)


def test_set_up_venue_twice(ledger_engine: Engine, redis_client: redis.Redis,
                            settings: Settings) -> None:
    with ledger_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {LEDGER_TABLES} CASCADE"))
    src = reconcile.sources(redis_client, session_factory(ledger_engine), DemoGateway(),
                            Queue(queueing.DEFAULT, connection=redis_client),
                            load_signer(settings.ticket_signing_key, ""))

    first = set_up_venue(src, EVENT_DATES)
    assert first.ledger.venue_created and first.ledger.blocks_created == BLOCKS
    assert (first.blocks_created, first.blocks_refreshed) == (BLOCKS, 0)
    stored = rows(ledger_engine, "SELECT event_date, s.slug FROM seat_blocks b "
                                 "JOIN sections s ON s.id = b.section_id")
    assert len(stored) == BLOCKS
    for row in stored:
        assert_block_ok(redis_client, BlockKeys(row["event_date"], row["slug"]))

    again = set_up_venue(src, EVENT_DATES)
    assert not again.ledger.venue_created and again.ledger.blocks_created == 0
    assert (again.blocks_created, again.blocks_refreshed) == (0, BLOCKS)


async def test_setup_after_redis_lost_its_data_keeps_sold_seats_sold(
        open_api, venue: VenueFixture, settings: Settings, redis_client: redis.Redis,
        ledger_engine: Engine) -> None:
    """`amphi up` runs setup-venue at every start, and its embedded Redis keeps nothing
    across restarts: the seats sold before must not be sold again."""
    sold = {"Orchestra Center": 4, "Lawn": 3}
    async with open_api(settings) as api:
        for n, (section, quantity) in enumerate(sold.items()):
            await buy(api, settings, venue.sections[section], quantity, f"fan-{n}")
    redis_client.flushdb()

    done = subprocess.run([AMPHI, "setup-venue", "--event-dates", *EVENT_DAYS], cwd=REPO,
                          env=amphi_env(settings), capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert f"redis blocks loaded: {BLOCKS} new, 0 refreshed" in done.stdout, done.stdout
    for section, quantity in sold.items():
        state = assert_block_matches_ledger(redis_client, ledger_engine, section)
        assert state.sold == quantity and state.held == 0, state
