"""The hot path's value types: a hold as its record says, an offer of seats, a block's
counters, and the limits the scripts keep."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

RECLAIM_LIMIT = 200  # expired holds one script call reclaims; keeps each call short


TOMBSTONE_MS = 3_600_000  # ended holds stay readable (status "expired"/"released") an hour


@dataclass(frozen=True, slots=True)
class BlockCounts:
    capacity: int
    held: int
    sold: int
    price_cents: int
    active: bool

    @property
    def available(self) -> int:
        return self.capacity - self.held - self.sold


# Not frozen: a frozen dataclass sets each field through object.__setattr__, and every hold
# builds one of these (12 fields) and an Offer on the hot path. Treat them as values.
@dataclass(slots=True)
class Hold:
    hold_id: str
    event_date: date
    section: str
    status: str  # active | released | expired | sold
    owner: str  # user id, "" for a guest
    client: str
    quantity: int
    price_cents: int
    seats: list[int] = field(default_factory=list)
    created_ms: int = 0
    expires_ms: int = 0
    ended_ms: int | None = None

    @property
    def total_cents(self) -> int:
        return self.quantity * self.price_cents


@dataclass(slots=True)
class Offer:
    """What a check (or a new hold) found: the seats and the price each."""

    quantity: int
    price_cents: int
    seats: list[int]
    expires_ms: int = 0


@dataclass(frozen=True, slots=True)
class SeatMap:
    """A reserved block's seats as fans may pick them: `seats` has one byte a seat, row by
    row from the stage (amphi/geometry.py: '0' free, 'H' held, 'S' sold)."""

    seats_per_row: int
    active: bool
    seats: str
