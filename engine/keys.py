"""Every Redis key the engine touches is built here, and nowhere else.

A seat block is one (event date, section). All of a block's keys share the hash tag
``{blk:<date>:<section>}`` so that each block script touches one slot and runs unchanged on
Redis Cluster. An owner's keys (rate limit, active holds, idempotency) share ``{own:<owner>}``.
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
        """hash: kind, capacity, rows, seats_per_row, price_cents, active, held, sold"""
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
        """hash hold_id -> JSON record of active holds and of recently ended ones"""
        return f"{self.tag}:records"

    @property
    def ended(self) -> str:
        """zset hold_id -> ended_at_ms, so old tombstones in `records` can be trimmed"""
        return f"{self.tag}:ended"

    @property
    def sales(self) -> str:
        """hash order_id -> JSON {mode, seats, qty}: which seats each paid order got"""
        return f"{self.tag}:sales"


@dataclass(frozen=True, slots=True)
class OwnerKeys:
    owner: str  # "user:<sub>" or "guest:<client address>"

    @property
    def tag(self) -> str:
        return f"{PREFIX}:{{own:{self.owner}}}"

    @property
    def rate(self) -> str:
        """hash minute_window -> count, for the per-client hold rate limit"""
        return f"{self.tag}:rate"

    @property
    def holds(self) -> str:
        """zset hold_id -> expires_at_ms of the owner's active holds"""
        return f"{self.tag}:holds"

    def idempotency(self, key: str) -> str:
        """string: '<hold_id>|<request fingerprint>' for an Idempotency-Key"""
        return f"{self.tag}:idem:{key}"


def blocks_index() -> str:
    """set of '<date>|<section>' for every block loaded into Redis (the sweeper's work list)"""
    return f"{PREFIX}:blocks"
