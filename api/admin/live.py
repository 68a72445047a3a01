"""After the admin commits an inventory edit (venue, section, event date, seat block), the
hot path applies it at once: every loaded block gets the ledger's price and on-sale flag in
Redis, and this process reloads its catalogue (other API processes do within
CATALOG_REFRESH_SECONDS; they take prices and on-sale flags from Redis, so a hold never
waits for that)."""

from __future__ import annotations

import logging

from api.state import Amphi
from engine.admin import refresh_loaded_blocks
from ledger.catalog import load_catalog
from ledger.inventory import block_specs

log = logging.getLogger(__name__)


async def apply_inventory_change(state: Amphi) -> int:
    """Returns the number of blocks refreshed in Redis."""
    async with state.sessions() as session:
        # Every block, not only the edited one: a section, venue or date edit reaches all
        # of its blocks, and the whole venue is a few hundred blocks in two round trips.
        specs = await session.run_sync(lambda sync_session: block_specs(sync_session))
        catalog = await load_catalog(session)
    refreshed = await refresh_loaded_blocks(state.redis, specs)
    state.catalog = catalog
    log.info("admin inventory change applied", extra={"blocks_refreshed": refreshed})
    return refreshed
