"""`amphi setup-venue`'s service: the venue, its sections, dates and blocks in the ledger,
every block loaded into Redis; run again, it creates nothing and refreshes every block."""

from __future__ import annotations

import redis
from sqlalchemy import Engine, text

from amphi.keys import BlockKeys
from ledger.db import session_factory
from ledger.venue_seed import SECTIONS
from services.venue import set_up_venue
from tests.api._support import EVENT_DATES, LEDGER_TABLES
from tests.engine._support import assert_block_ok
from tests.payments._support import rows


def test_set_up_venue_twice(ledger_engine: Engine, redis_client: redis.Redis) -> None:
    with ledger_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {LEDGER_TABLES} CASCADE"))
    sessions = session_factory(ledger_engine)
    blocks = len(SECTIONS) * len(EVENT_DATES)

    first = set_up_venue(sessions, redis_client, EVENT_DATES)
    assert first.ledger.venue_created and first.ledger.blocks_created == blocks
    assert (first.blocks_created, first.blocks_refreshed) == (blocks, 0)
    stored = rows(ledger_engine, "SELECT event_date, s.slug FROM seat_blocks b "
                                 "JOIN sections s ON s.id = b.section_id")
    assert len(stored) == blocks
    for row in stored:
        assert_block_ok(redis_client, BlockKeys(row["event_date"], row["slug"]))

    again = set_up_venue(sessions, redis_client, EVENT_DATES)
    assert not again.ledger.venue_created and again.ledger.blocks_created == 0
    assert (again.blocks_created, again.blocks_refreshed) == (0, blocks)
