"""Every Redis key the engine touches is built here, and nowhere else.

A seat block is one (event date, section). All of a block's keys share the hash tag
``{blk:<date>:<section>}`` so that each block script touches one slot and runs unchanged on
Redis Cluster. A hold's admission (rate limit, active-hold cap) is counted in its block too,
so that making a hold is one script call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

PREFIX = "amphi"


@dataclass(frozen=True, slots=True)
class BlockKeys:
    event_date: date
    section: str  # section slug

    @property
    def tag(self) -> str:
        return f"{PREFIX}:{{blk:{self.event_date.isoformat()}:{self.section}}}"

    @property
    def meta(self) -> str:
        """hash: kind, capacity, rows, seats_per_row, price_cents, active, held, sold,
        expired (holds that ever expired in the block, counted by the scripts that expire
        them; absent until the first), clients_scan (the sweeper's cursor over the client
        entries of `records`), due_ms (no active hold expires before it; absent: unknown)"""
        return f"{self.tag}:meta"

    @property
    def seats(self) -> str:
        """string, one byte a seat: '0' free, 'H' held, 'S' sold (reserved sections only)"""
        return f"{self.tag}:seats"

    @property
    def holds(self) -> str:
        """zset hold_id -> expires_at_ms of the block's active holds"""
        return f"{self.tag}:holds"

    @property
    def records(self) -> str:
        """hash hold_id -> JSON record of active holds and of recently ended ones, and
        'c:<client>' -> '<active holds> <tat>': the client's active holds in the block and its
        rate limiter's theoretical arrival time (µs, GCRA); engine.holds.split_records reads
        it"""
        return f"{self.tag}:records"

    @property
    def ended(self) -> str:
        """zset hold_id -> ended_at_ms, so old tombstones in `records` can be trimmed"""
        return f"{self.tag}:ended"

    @property
    def sales(self) -> str:
        """hash order_id -> JSON {mode, seats, qty}: which seats each paid order got"""
        return f"{self.tag}:sales"


def blocks_index() -> str:
    """set of '<date>|<section>' for every block loaded into Redis (the sweeper's work list)"""
    return f"{PREFIX}:blocks"
