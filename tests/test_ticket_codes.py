"""Ticket codes: read aloud at a gate, so no 0/O or 1/I, and unguessable, so every symbol
equally likely (pure; no server)."""

from __future__ import annotations

import re
from collections import Counter

from ledger.tickets import CODE_SYMBOLS, new_code

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def test_a_code_is_its_prefix_and_ten_symbols_without_look_alikes() -> None:
    codes = {new_code("AMPH") for _ in range(2000)}
    assert len(codes) == 2000
    assert all(re.fullmatch(rf"AMPH-[{ALPHABET}]{{10}}", c) for c in codes)
    assert not set("".join(codes)) & set("01OI")


def test_every_symbol_is_drawn_from_as_many_byte_values() -> None:
    # a random byte picks the symbol: unbiased only if each symbol has the same share of the
    # 256 byte values
    symbols = Counter(bytes(range(256)).translate(CODE_SYMBOLS).decode())
    assert set(symbols) == set(ALPHABET)
    assert set(symbols.values()) == {256 // len(ALPHABET)}
