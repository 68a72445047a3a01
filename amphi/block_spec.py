"""A seat block as the ledger defines it and the engine loads it: the shared value types."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from amphi.accessible import AccessiblePair
from amphi.keys import BlockKeys


class BlockKind(enum.StrEnum):
    """How a block sells: seat by seat, or as a count (the engine's wire names)."""
    RESERVED = "reserved"
    GA = "ga"


@dataclass(frozen=True, slots=True)
class BlockSpec:
    """What the ledger says a block is; the input of the engine's load and rebuild."""

    block: BlockKeys
    kind: BlockKind
    capacity: int
    rows: int
    seats_per_row: int
    price_cents: int
    active: bool
    # reserved: wheelchair spaces and their companions, in the order holds get them
    accessible: tuple[AccessiblePair, ...] = ()
    accessible_released: bool = False  # the box office put them on general sale
