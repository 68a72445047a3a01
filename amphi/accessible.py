"""Accessible seating of a reserved section: its wheelchair spaces, each with the companion
seat beside it, as the venue data writes them (`sections.accessible_seats`, e.g.
``"X1+X2, X49+X50"``: space first, then its companion), and the policy that chooses them.

In a block's seat string a free space is ``W`` and a free companion seat ``C`` (see
`amphi.geometry`): best available and picks look for ``0`` and so never take them. Only a
hold that asks for accessible seating does, until the rest of the block is sold out or the
box office releases them, when they turn ``0`` and join general sale (`lua/_block.lua`).
This module is pure; `lua/create_hold.lua` follows `choose_pairs` over the pairs in the
order `ordered` gives them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from amphi.geometry import COMPANION, FREE, WHEELCHAIR, Geometry, Seat

_SEAT = re.compile(r"([A-Z]+)(\d+)")


@dataclass(frozen=True, slots=True)
class AccessiblePair:
    space: int  # seat index of the wheelchair space
    companion: int  # seat index of its companion seat, beside it in the same row


def _seat(text: str, geometry: Geometry) -> int:
    match = _SEAT.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not a seat: write the row and the number, as A12")
    return geometry.index(Seat(match[1], int(match[2])))


def parse_pairs(text: str, geometry: Geometry) -> tuple[AccessiblePair, ...]:
    """The pairs of `text` (``"A1+A2, A5+A6"``; blank: none), checked against the section:
    every seat in it, the companion beside its space in the same row, no seat twice.
    Raises ValueError naming the first mistake."""
    pairs: list[AccessiblePair] = []
    used: set[int] = set()
    for item in filter(None, (part.strip() for part in text.upper().split(","))):
        space_text, plus, companion_text = item.partition("+")
        if not plus:
            raise ValueError(f"{item!r}: write a wheelchair space and its companion seat "
                             "joined by '+', as A1+A2")
        space = _seat(space_text.strip(), geometry)
        companion = _seat(companion_text.strip(), geometry)
        same_row = space // geometry.seats_per_row == companion // geometry.seats_per_row
        if not same_row or abs(space - companion) != 1:
            raise ValueError(f"{item!r}: the companion seat must be beside the space, "
                             "in the same row")
        if {space, companion} & used:
            raise ValueError(f"{item!r}: a seat may be in one pair only")
        used |= {space, companion}
        pairs.append(AccessiblePair(space, companion))
    return tuple(ordered(pairs, geometry.seats_per_row))


def describe_pairs(pairs: tuple[AccessiblePair, ...], geometry: Geometry) -> str:
    """The venue data's text for `pairs` (what `parse_pairs` reads)."""
    def name(index: int) -> str:
        seat = geometry.seat(index)
        return f"{seat.row}{seat.seat}"
    return ", ".join(f"{name(p.space)}+{name(p.companion)}" for p in pairs)


def normalised(text: str, *, reserved: bool, rows: int | None,
               seats_per_row: int | None) -> str:
    """A section's accessible seats as the venue data keeps them, written the one way;
    ValueError saying why when they do not fit the section."""
    if not text.strip():
        return ""
    if not reserved:
        raise ValueError("A general-admission section has no seats to set aside: "
                         "leave accessible seats empty.")
    geometry = Geometry(rows or 0, seats_per_row or 0)
    return describe_pairs(parse_pairs(text, geometry), geometry)


def ordered(pairs: list[AccessiblePair], seats_per_row: int) -> list[AccessiblePair]:
    """The order in which holds get the pairs: the row nearest the stage first, then the
    space nearest the row's centre, then the leftmost (best available's order)."""
    def rank(pair: AccessiblePair) -> tuple[int, int, int]:
        row, offset = divmod(pair.space, seats_per_row)
        return row, abs(2 * offset + 1 - seats_per_row), offset
    return sorted(pairs, key=rank)


def pairs_arg(pairs: tuple[AccessiblePair, ...]) -> str:
    """The block's `access` field, as the scripts read it: ``space:companion`` in order."""
    return ",".join(f"{p.space}:{p.companion}" for p in pairs)


def usable(seats: str, pair: AccessiblePair, companions: bool) -> bool:
    """Whether a hold asking for accessible seating may take `pair` now: the space withheld
    or (released to general sale) free, and its companion too if one is wanted."""
    return (seats[pair.space] in (WHEELCHAIR, FREE)
            and (not companions or seats[pair.companion] in (COMPANION, FREE)))


def choose_pairs(seats: str, pairs: tuple[AccessiblePair, ...], spaces: int,
                 companions: bool) -> list[int] | None:
    """The seats a hold of `spaces` wheelchair spaces gets (with their companion seats
    unless `companions` is False), ascending; None when fewer pairs are usable. The first
    usable pairs of `pairs` (already `ordered`) win."""
    found = [p for p in pairs if usable(seats, p, companions)][:spaces]
    if len(found) < spaces:
        return None
    return sorted(i for p in found for i in ((p.space, p.companion) if companions
                                             else (p.space,)))


def withhold(seats: str, pairs: tuple[AccessiblePair, ...]) -> str:
    """`seats` with the layout applied: free spaces and companion seats withheld ('W',
    'C'), any other withheld seat free again. `lua/_block.lua`'s `withhold` does this."""
    chars = [FREE if c in (WHEELCHAIR, COMPANION) else c for c in seats]
    for pair in pairs:
        for index, state in ((pair.space, WHEELCHAIR), (pair.companion, COMPANION)):
            if chars[index] == FREE:
                chars[index] = state
    return "".join(chars)
