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


def holder_holds(holder: str) -> str:
    """set of the hold ids a fan made ('user:<id>', or 'guest:<guest id>'): the index of
    "my holds", written beside each hold and checked against the holds' records when read
    (an id whose hold is over, or was refused, is dropped then)"""
    return f"{PREFIX}:holds-of:{holder}"


def blocks_index() -> str:
    """set of '<date>|<section>' for every block loaded into Redis (the sweeper's work list)"""
    return f"{PREFIX}:blocks"


@dataclass(frozen=True, slots=True)
class RoomKeys:
    """A waiting room of one event date. Its keys share the hash tag ``{room:<date>}``: each
    room script touches one slot, on Redis Cluster too."""
    event_date: date

    @property
    def tag(self) -> str:
        return f"{PREFIX}:{{room:{self.event_date.isoformat()}}}"

    @property
    def config(self) -> str:
        """hash: state (open, paused, closed), prequeue_ms, on_sale_ms, rate_per_minute,
        max_active, turn_seconds, epoch (bumped to revoke every token), ranked (1 once the
        pre-queue has been ordered), carry (admissions the rate allowed but not yet made),
        last_ms (when admission last advanced), turns_expired (turns that ran out)"""
        return f"{self.tag}:config"

    @property
    def places(self) -> str:
        """hash identity -> 'pre' (in the pre-queue) or their position: one place each"""
        return f"{self.tag}:places"

    @property
    def prequeue(self) -> str:
        """zset identity -> a random score drawn at join: the pre-queue's order at the start"""
        return f"{self.tag}:prequeue"

    @property
    def counters(self) -> str:
        """hash: last (the last position given), admitted (admitted up to this position)"""
        return f"{self.tag}:counters"

    @property
    def turns(self) -> str:
        """zset position -> ms when that admitted fan's turn ends: the active shoppers"""
        return f"{self.tag}:turns"

    @property
    def holds(self) -> str:
        """hash hold_id -> position of the admitted fan who made it, so that the order it
        becomes ends that fan's turn"""
        return f"{self.tag}:holds"

    def script_keys(self) -> list[str]:
        """KEYS of the room scripts (lua/_room.lua)"""
        return [self.config, self.places, self.prequeue, self.counters, self.turns]

    def all(self) -> list[str]:
        return [*self.script_keys(), self.holds]


def rooms_index() -> str:
    """hash event date -> state of every waiting room, so each API process learns which
    dates have one"""
    return f"{PREFIX}:rooms"
