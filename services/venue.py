"""Setting the venue up: its sections, event dates and seat blocks in the ledger (created
where missing), then every block loaded into Redis (created, or its price and on-sale flag
refreshed). Idempotent. `amphi setup-venue` and `amphi up` call it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session, sessionmaker

from engine import blocks, scripts
from ledger.inventory import block_specs
from ledger.venue_setup import SetupReport, setup_venue


@dataclass(frozen=True, slots=True)
class VenueSetup:
    ledger: SetupReport
    blocks_created: int  # in Redis
    blocks_refreshed: int


def set_up_venue(sessions: sessionmaker[Session], redis: scripts.Client,
                 event_dates: list[date]) -> VenueSetup:
    with sessions.begin() as session:
        report = setup_venue(session, event_dates)
        specs = block_specs(session)
    scripts.load_all(redis)
    outcomes = [blocks.load_block(redis, spec) for spec in specs]
    created = outcomes.count("created")
    return VenueSetup(report, created, len(outcomes) - created)
