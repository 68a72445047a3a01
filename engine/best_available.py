"""The best-available policy, written plainly: the specification `lua/create_hold.lua` follows.

For a party of ``qty`` in a reserved section:
1. Only runs of ``qty`` adjacent free seats in one row are candidates.
2. A candidate that leaves a single stranded seat (a gap of exactly one free seat between
   the party and a taken seat or the row's end) loses to any candidate that does not.
3. Then the row nearest the stage wins, then the run whose middle is nearest the row's
   centre, then the leftmost.
When no row has ``qty`` adjacent seats and the caller allows splitting, the party takes
the single free seats in the same order (front row first, nearest the centre).

The Lua script evaluates only a handful of starts per free run (the centred one and the
ones next to the stranding positions); this module tries every start so that the two can
be compared on random seat maps.
"""

from __future__ import annotations

from amphi.geometry import FREE


def _free_runs(row: str) -> list[tuple[int, int]]:
    """Maximal runs of free seats in one row, as (first, last) offsets, inclusive."""
    runs: list[tuple[int, int]] = []
    start = None
    for offset, state in enumerate(row):
        if state == FREE and start is None:
            start = offset
        elif state != FREE and start is not None:
            runs.append((start, offset - 1))
            start = None
    if start is not None:
        runs.append((start, len(row) - 1))
    return runs


# strands a seat, row, twice the distance off centre, start: the least one wins
Rank = tuple[bool, int, int, int]


def _rank(row: int, start: int, qty: int, first: int, last: int, width: int) -> Rank:
    strands = (start - first == 1) or (last - (start + qty - 1) == 1)
    off_centre = abs(2 * start + qty - width)  # twice the distance of the party's middle
    return (strands, row, off_centre, start)


def best_adjacent(seats: str, seats_per_row: int, qty: int) -> list[int] | None:
    """Seat indices of the best run of ``qty`` adjacent free seats, or None."""
    if qty < 1:
        raise ValueError("qty must be >= 1")
    best: Rank | None = None
    for row in range(len(seats) // seats_per_row):
        base = row * seats_per_row
        for first, last in _free_runs(seats[base : base + seats_per_row]):
            for start in range(first, last - qty + 2):
                rank = _rank(row, start, qty, first, last, seats_per_row)
                if best is None or rank < best:
                    best = rank
    if best is None:
        return None
    _, row, _, start = best
    base = row * seats_per_row + start
    return list(range(base, base + qty))


def best_split(seats: str, seats_per_row: int, qty: int) -> list[int] | None:
    """``qty`` free seats, front row first and nearest the centre, adjacency not required."""
    order = sorted(
        (i for i, state in enumerate(seats) if state == FREE),
        key=lambda i: (i // seats_per_row, abs(2 * (i % seats_per_row) + 1 - seats_per_row), i),
    )
    return sorted(order[:qty]) if len(order) >= qty else None


def choose_seats(
    seats: str, seats_per_row: int, qty: int, *, allow_split: bool = False
) -> list[int] | None:
    """The seats the engine gives a party of ``qty``, or None when it cannot seat them."""
    chosen = best_adjacent(seats, seats_per_row, qty)
    if chosen is None and allow_split:
        chosen = best_split(seats, seats_per_row, qty)
    return chosen
