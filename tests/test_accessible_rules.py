"""The accessible-seating rules, without servers: the venue data's text, the order the pairs
are given in, and which pairs a hold gets."""

from __future__ import annotations

import pytest

from amphi.accessible import (
    AccessiblePair,
    choose_pairs,
    describe_pairs,
    normalised,
    parse_pairs,
    withhold,
)
from amphi.geometry import Geometry

G = Geometry(3, 6)  # rows A-C, seats 1-6: index = row * 6 + seat - 1


def test_pairs_are_read_and_given_front_row_then_centre_first() -> None:
    pairs = parse_pairs("c1+c2, A6+A5,  b3+B4", G)
    # B3 is nearer its row's centre than A6 is to A's, but A is nearer the stage
    assert pairs == (AccessiblePair(5, 4), AccessiblePair(8, 9), AccessiblePair(12, 13))
    assert describe_pairs(pairs, G) == "A6+A5, B3+B4, C1+C2"
    assert parse_pairs("", G) == parse_pairs(" , ", G) == ()


@pytest.mark.parametrize(("text", "why"), [
    ("A1", "joined by"),
    ("A1+B1", "beside the space"),
    ("A1+A3", "beside the space"),
    ("A6+B1", "beside the space"),  # adjacent indices, different rows
    ("A1+A2, A2+A3", "one pair only"),
    ("D1+D2", "no seat D1"),
    ("A7+A6", "no seat A7"),
    ("1A+2A", "not a seat"),
])
def test_text_that_does_not_fit_the_section_is_refused(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_pairs(text, G)


def test_the_admins_text_is_kept_written_the_one_way() -> None:
    assert normalised(" b4+b3 ,a1+a2", reserved=True, rows=3, seats_per_row=6) == \
        "A1+A2, B4+B3"
    assert normalised("  ", reserved=False, rows=None, seats_per_row=None) == ""
    with pytest.raises(ValueError, match="general-admission"):
        normalised("A1+A2", reserved=False, rows=None, seats_per_row=None)


def test_a_hold_gets_the_first_usable_pairs() -> None:
    pairs = parse_pairs("A1+A2, A6+A5, B3+B4", G)
    seats = withhold("0" * 18, pairs)
    assert seats == "WC00CW" + "00WC00" + "000000"
    # row A first; A1 and A6 are as far off centre: the leftmost
    assert choose_pairs(seats, pairs, 1, True) == [0, 1]
    assert choose_pairs(seats, pairs, 2, True) == [0, 1, 4, 5]
    assert choose_pairs(seats, pairs, 3, False) == [0, 5, 8]
    assert choose_pairs(seats, pairs, 4, True) is None
    # a space whose companion is taken serves only a hold without companions
    taken = "WH" + seats[2:]
    assert choose_pairs(taken, pairs, 1, True) == [4, 5]
    assert choose_pairs(taken, pairs, 1, False) == [0]
    # released to general sale: free seats of the pairs still serve accessible holds
    assert choose_pairs("H" + "0" * 17, pairs, 1, True) == [4, 5]


def test_withholding_follows_the_layout_and_spares_taken_seats() -> None:
    pairs = parse_pairs("A1+A2", G)
    assert withhold("SH" + "0" * 16, pairs) == "SH" + "0" * 16
    # a seat that left the layout is free again
    assert withhold("00WC" + "0" * 14, pairs) == "WC" + "0" * 16
