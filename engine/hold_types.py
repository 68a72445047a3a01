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
    withheld: int = 0  # wheelchair spaces and companion seats kept from general sale
    wheelchair_free: int = 0  # spaces a hold asking for accessible seating may get

    @property
    def available(self) -> int:
        """The seats a general hold may get."""
        return self.capacity - self.held - self.sold - self.withheld


@dataclass(frozen=True, slots=True)
class Accessible:
    """What a hold asking for accessible seating wants: wheelchair spaces, each with its
    companion seat unless `companions` is False."""

    spaces: int
    companions: bool = True

    @property
    def seats(self) -> int:
        return self.spaces * (2 if self.companions else 1)


# Not frozen: a frozen dataclass sets each field through object.__setattr__, and every hold
# builds one of these (13 fields) and an Offer on the hot path. Treat them as values.
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
    accessible: int = 0  # wheelchair spaces it holds (with companions, if it asked)

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
    row from the stage (amphi/geometry.py: '0' free, 'H' held, 'S' sold, 'W' and 'C' a
    wheelchair space and companion seat withheld for accessible holds)."""

    seats_per_row: int
    active: bool
    seats: str
