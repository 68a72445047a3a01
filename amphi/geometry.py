"""Seat geometry of a reserved section: rows lettered from the stage, seats numbered 1..n.

A section's seats live in one string, row by row from the stage, one byte a seat, so seat
index ``i`` is row ``i // seats_per_row`` and seat number ``i % seats_per_row + 1``.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

FREE = "0"
HELD = "H"
SOLD = "S"
WHEELCHAIR = "W"  # a free wheelchair space, withheld from general sale (amphi/accessible.py)
COMPANION = "C"  # the free companion seat beside one, withheld alike

_LETTERS = string.ascii_uppercase


def row_label(row_index: int) -> str:
    """A, B, ..., Z, then AA, BB, ..., ZZ, then AAA: the usual venue lettering past Z."""
    if row_index < 0:
        raise ValueError("row index must be >= 0")
    repeat, letter = divmod(row_index, len(_LETTERS))
    return _LETTERS[letter] * (repeat + 1)


def row_index(label: str) -> int:
    """Inverse of `row_label`."""
    if not label or label != label[0] * len(label) or label[0] not in _LETTERS:
        raise ValueError(f"not a row label: {label!r}")
    return (len(label) - 1) * len(_LETTERS) + _LETTERS.index(label[0])


@dataclass(frozen=True, slots=True)
class Seat:
    row: str
    seat: int

    def as_json(self) -> dict[str, str | int]:
        return {"row": self.row, "seat": self.seat}


@dataclass(frozen=True, slots=True)
class Geometry:
    rows: int
    seats_per_row: int

    def __post_init__(self) -> None:
        if self.rows < 1 or self.seats_per_row < 1:
            raise ValueError("a reserved section needs at least one row and one seat a row")

    @property
    def capacity(self) -> int:
        return self.rows * self.seats_per_row

    def seat(self, index: int) -> Seat:
        if not 0 <= index < self.capacity:
            raise ValueError(f"seat index {index} outside 0..{self.capacity - 1}")
        row, offset = divmod(index, self.seats_per_row)
        return Seat(row_label(row), offset + 1)

    def index(self, seat: Seat) -> int:
        row = row_index(seat.row)
        if not 0 <= row < self.rows or not 1 <= seat.seat <= self.seats_per_row:
            raise ValueError(f"no seat {seat.row}{seat.seat} in this section")
        return row * self.seats_per_row + seat.seat - 1


@dataclass(frozen=True, slots=True)
class SeatLine:
    """One seat of an order or a ticket: its index in the block, row and number; all None
    for general admission."""
    seat_index: int | None
    row: str | None
    seat: int | None


def seat_lines(geometry: Geometry | None, indices: list[int], quantity: int) -> list[SeatLine]:
    """The lines of `quantity` seats: the seats at `indices` of a reserved section's
    `geometry`, or (geometry None) as many unseated general-admission places."""
    if geometry is None:
        return [SeatLine(None, None, None)] * quantity
    return [SeatLine(i, place.row, place.seat) for i, place in
            ((i, geometry.seat(i)) for i in indices)]
