"""Setting the venue up: its sections, event dates and seat blocks in the ledger (created
where missing), then every block in Redis: a block Redis does not have is built from the
ledger (its sold seats sold: Redis may have lost its data, and a fresh block would sell them
again), one it has gets its price and on-sale flag refreshed. Idempotent. `amphi
setup-venue` and `amphi up` call it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from engine import blocks, scripts
from ledger.inventory import block_specs
from ledger.venue_setup import SetupReport, setup_venue
from services.inventory import rebuild_block
from services.reconcile import Sources


@dataclass(frozen=True, slots=True)
class VenueSetup:
    ledger: SetupReport
    blocks_created: int  # in Redis, from the ledger
    blocks_refreshed: int


def set_up_venue(src: Sources, event_dates: list[date]) -> VenueSetup:
    with src.sessions.begin() as session:
        report = setup_venue(session, event_dates)
        specs = block_specs(session)
    scripts.load_all(src.redis)
    lost = set(blocks.missing(src.redis, [spec.block for spec in specs]))
    created = 0
    for spec in specs:
        if spec.block in lost:
            if not rebuild_block(src, spec):
                raise RuntimeError(f"{spec.block.tag}: could not be built from the ledger; "
                                   "see `amphi reconcile`")
            created += 1
        else:
            blocks.load_block(src.redis, spec)
    return VenueSetup(report, created, len(specs) - created)
