"""Pure unit tests of the best-available policy (the spec the Lua follows) and geometry."""

from __future__ import annotations

import pytest

from amphi.geometry import FREE, HELD, SOLD, Geometry, Seat, row_index, row_label
from engine.best_available import best_adjacent, best_split, choose_seats


def rows(*texts: str) -> str:
    """Seat map from row strings ('0' free, 'S' sold, 'H' held), front row first."""
    assert len({len(t) for t in texts}) == 1, "all rows must have the same width"
    return "".join(texts)


def strands(seats: str, spr: int, chosen: list[int]) -> bool:
    """Does `chosen` leave exactly one free seat between it and a taken seat / row end?"""
    row = chosen[0] // spr
    line = list(seats[row * spr:(row + 1) * spr])
    for i in chosen:
        line[i % spr] = "X"
    text = "".join(line)
    first, last = chosen[0] % spr, chosen[-1] % spr
    left = text[:first]
    right = text[last + 1:]
    gap_left = len(left) - len(left.rstrip(FREE))
    gap_right = len(right) - len(right.lstrip(FREE))
    return gap_left == 1 or gap_right == 1


# -- front row first, centred ------------------------------------------------------------
def test_empty_section_takes_front_row_centre() -> None:
    seats = "0" * 30
    assert choose_seats(seats, 10, 2) == [4, 5]
    assert choose_seats(seats, 10, 4) == [3, 4, 5, 6]


def test_odd_width_is_exactly_centred() -> None:
    assert choose_seats("0" * 9, 9, 3) == [3, 4, 5]
    assert choose_seats("0" * 9, 9, 1) == [4]


def test_centre_tie_goes_to_the_left() -> None:
    # width 10, party of 3: starts 3 and 4 are equally off-centre; leftmost wins
    assert choose_seats("0" * 10, 10, 3) == [3, 4, 5]
    # width 9, party of 2: starts 3 and 4 likewise
    assert choose_seats("0" * 9, 9, 2) == [3, 4]


def test_front_row_beats_a_more_central_seat_further_back() -> None:
    seats = rows("SSSSSSS000", "0000000000")
    assert choose_seats(seats, 10, 3) == [7, 8, 9]


def test_full_front_row_moves_back_one_row() -> None:
    seats = rows("SSSSSSSSSS", "HHHHHHHHHH", "0000000000")
    assert choose_seats(seats, 10, 2) == [24, 25]


def test_centred_within_a_partly_taken_row() -> None:
    # free run 0..3 and 6..9 around a sold centre; both runs are 2 seats off-centre at best,
    # the left one (start 2) is leftmost
    seats = rows("0000SS0000")
    assert choose_seats(seats, 10, 2) == [2, 3]


def test_taken_seats_are_never_chosen() -> None:
    seats = rows("0H0S00H0S0", "S0H0H00S00")
    for qty in (1, 2):
        chosen = choose_seats(seats, 10, qty)
        assert chosen is not None
        assert all(seats[i] == FREE for i in chosen)


# -- stranded seats -----------------------------------------------------------------------
def test_avoids_a_stranded_seat_in_the_same_row() -> None:
    # run 1..9, party of 6: the centred start (2) would leave seat 1 alone next to the
    # sold seat 0; start 1 is as central as start 3 (which strands seat 9) and strands none
    seats = rows("S000000000")
    centred = [2, 3, 4, 5, 6, 7]
    assert strands(seats, 10, centred)
    chosen = choose_seats(seats, 10, 6)
    assert chosen == [1, 2, 3, 4, 5, 6]
    assert not strands(seats, 10, chosen)


def test_stranding_against_the_row_end_counts() -> None:
    # run 0..6 of a 7-wide row, party of 5: centred start 1 strands seat 0 at the row end
    assert strands("0000000", 7, [1, 2, 3, 4, 5])
    assert choose_seats("0000000", 7, 5) in ([0, 1, 2, 3, 4], [2, 3, 4, 5, 6])
    assert choose_seats("0000000", 7, 5) == [0, 1, 2, 3, 4]  # tie: leftmost


def test_goes_to_a_further_row_to_avoid_stranding() -> None:
    # front row: a run of exactly qty + 1 seats, so every placement strands a seat
    seats = rows("SSS0000SSS", "0000000000")
    chosen = choose_seats(seats, 10, 3)
    assert chosen == [13, 14, 15]
    assert not strands(seats, 10, chosen)


def test_goes_several_rows_back_to_avoid_stranding() -> None:
    # rows 0-2 only have runs of 3: a pair there always strands a seat; row 3 fits exactly
    seats = rows("SS000SSSSS", "SSSSS000SS", "000SSSS000", "SSSS00SSSS")
    chosen = choose_seats(seats, 10, 2)
    assert chosen == [34, 35]
    assert not strands(seats, 10, chosen)
    # a party of 3 fits the front row exactly
    assert choose_seats(seats, 10, 3) == [2, 3, 4]


def test_strands_when_it_is_the_only_option() -> None:
    seats = rows("SSS0000SSS", "SSSSSSSSSS")
    chosen = choose_seats(seats, 10, 3)
    assert chosen == [3, 4, 5]  # more central than [4, 5, 6]
    assert strands(seats, 10, chosen)


def test_stranding_fallback_prefers_front_row_then_centre() -> None:
    # every placement of a pair strands a seat; the front row wins, then its centre
    seats = rows("SSSSS000SS", "SSS000SSSS")
    assert choose_seats(seats, 10, 2) == [5, 6]


def test_non_stranding_placement_in_a_longer_run() -> None:
    # row 1 run 3..6: the centred pair (4, 5) strands both 3 and 6; 3..4 leaves 5..6
    seats = rows("SSSSS000SS", "SSS0000SSS")
    assert choose_seats(seats, 10, 2) == [13, 14]
    assert choose_seats(seats, 10, 3) == [5, 6, 7]  # front row, exact fit


def test_exact_fit_is_not_stranding() -> None:
    seats = rows("SS00SSSSSS", "0000000000")
    assert choose_seats(seats, 10, 2) == [2, 3]


# -- no split unless allowed ---------------------------------------------------------------
def test_seats_never_split_across_rows_by_default() -> None:
    seats = rows("00SS", "S00S")
    assert best_adjacent(seats, 4, 3) is None
    assert choose_seats(seats, 4, 3) is None
    assert choose_seats(seats, 4, 3, allow_split=False) is None


def test_allow_split_takes_front_row_singles_nearest_centre() -> None:
    seats = rows("00SS", "S00S")
    # row 0: offset 1 is nearer the centre than offset 0; then row 1 offsets 1, 2 tie
    assert choose_seats(seats, 4, 3, allow_split=True) == [0, 1, 5]


def test_allow_split_order_within_a_row() -> None:
    seats = rows("0S0S0S0", "0000000")
    # row 0 free offsets 0, 2, 4, 6: 2 and 4 are nearest the centre, then 0 (leftmost of
    # the tie 0/6), then 6, then row 1's centre (offset 3 -> index 10)
    assert choose_seats(seats, 7, 2, allow_split=True) == [9, 10]  # adjacent exists
    assert best_split(seats, 7, 2) == [2, 4]
    assert best_split(seats, 7, 3) == [0, 2, 4]
    assert best_split(seats, 7, 4) == [0, 2, 4, 6]
    assert best_split(seats, 7, 5) == [0, 2, 4, 6, 10]
    assert best_split(seats, 7, 6) == [0, 2, 4, 6, 9, 10]


def test_allow_split_prefers_adjacent_seats_when_there_are_some() -> None:
    seats = rows("0S0S0S0", "0000000")
    assert choose_seats(seats, 7, 3, allow_split=True) == [9, 10, 11]


def test_not_enough_free_seats_even_split() -> None:
    seats = rows("0SSSSSS0", "SSSHHSSS")
    assert choose_seats(seats, 8, 3, allow_split=True) is None
    assert choose_seats(seats, 8, 2, allow_split=True) == [0, 7]
    assert choose_seats(seats, 8, 2) is None


def test_full_and_oversized_parties() -> None:
    assert choose_seats(SOLD * 20, 10, 1, allow_split=True) is None
    assert choose_seats(HELD * 20, 10, 1) is None
    assert choose_seats("0" * 20, 10, 11) is None  # wider than a row
    assert choose_seats("0" * 20, 10, 11, allow_split=True) == sorted(
        [4, 5, 3, 6, 2, 7, 1, 8, 0, 9, 14])


def test_bad_quantity_raises() -> None:
    with pytest.raises(ValueError):
        choose_seats("0" * 10, 10, 0)
    with pytest.raises(ValueError):
        best_adjacent("0" * 10, 10, -1)


# -- geometry -------------------------------------------------------------------------------
def test_row_labels() -> None:
    assert [row_label(i) for i in range(3)] == ["A", "B", "C"]
    assert row_label(25) == "Z"
    assert row_label(26) == "AA"
    assert row_label(27) == "BB"
    assert row_label(51) == "ZZ"
    assert row_label(52) == "AAA"


def test_row_label_round_trip() -> None:
    for i in range(200):
        assert row_index(row_label(i)) == i


@pytest.mark.parametrize("label", ["", "a", "AB", "A1", "1", "ÄÄ", "ZZA", " A"])
def test_bad_row_labels_raise(label: str) -> None:
    with pytest.raises(ValueError):
        row_index(label)


def test_negative_row_index_raises() -> None:
    with pytest.raises(ValueError):
        row_label(-1)


def test_index_seat_round_trip() -> None:
    g = Geometry(30, 50)
    assert g.capacity == 1500
    seen = set()
    for i in range(g.capacity):
        seat = g.seat(i)
        assert g.index(seat) == i
        seen.add((seat.row, seat.seat))
    assert len(seen) == 1500
    assert g.seat(0) == Seat("A", 1)
    assert g.seat(49) == Seat("A", 50)
    assert g.seat(50) == Seat("B", 1)
    assert g.seat(26 * 50) == Seat("AA", 1)
    assert g.seat(1499) == Seat("DD", 50)
    assert g.seat(27 * 50 + 6).as_json() == {"row": "BB", "seat": 7}


@pytest.mark.parametrize("rows_, spr", [(0, 5), (5, 0), (-1, 5)])
def test_bad_geometry_raises(rows_: int, spr: int) -> None:
    with pytest.raises(ValueError):
        Geometry(rows_, spr)


@pytest.mark.parametrize("index", [-1, 20, 10_000])
def test_seat_outside_section_raises(index: int) -> None:
    with pytest.raises(ValueError):
        Geometry(2, 10).seat(index)


@pytest.mark.parametrize("seat", [Seat("A", 0), Seat("A", 11), Seat("C", 1), Seat("AA", 1)])
def test_index_of_a_missing_seat_raises(seat: Seat) -> None:
    with pytest.raises(ValueError):
        Geometry(2, 10).index(seat)
