"""The Lua best-available search agrees with `engine/best_available.py` on random seat maps.

The Lua script only evaluates a few starts per free run; the Python spec tries them all.
Each example installs a seat map in Redis, asks `HoldEngine.check` (mode 'check') and
compares its seats with `choose_seats`; a check must not change the block.
"""

from __future__ import annotations

import asyncio
import random

import pytest
import redis
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from amphi import errors, keys
from amphi.settings import Settings
from engine.best_available import choose_seats
from tests.engine._support import (
    DAY,
    PRICE,
    engine_client,
    make_engine,
    meta,
    new_block,
    seat_string,
    write_seat_map,
)

DENSITIES = [0.0, 0.1, 0.3, 0.5, 0.7, 0.85, 0.95, 1.0]


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, int, int, bool]:
    """(seat map, seats per row, party size, allow_split)."""
    rows = draw(st.integers(1, 30))
    spr = draw(st.integers(1, 50))
    qty = draw(st.integers(1, 8))
    allow_split = draw(st.booleans())
    n = rows * spr
    style = draw(st.sampled_from(["scatter", "runs", "strand", "edge", "exact"]))
    if style == "exact" and n <= 80:
        # small maps drawn seat by seat, so that hypothesis can shrink them
        seats = "".join(draw(st.lists(st.sampled_from("0HS"), min_size=n, max_size=n)))
        return seats, spr, qty, allow_split
    density = draw(st.sampled_from(DENSITIES))
    rnd = random.Random(draw(st.integers(0, 2**32 - 1)))
    if style == "strand":
        # rows whose free runs are qty + 1 long (every placement strands a seat) or exact
        # fits, some rows full: the stranding fallback and the row order decide
        out = []
        for _ in range(rows):
            row = ["S"] * spr
            if rnd.random() >= density:
                for _ in range(rnd.randint(1, 3)):
                    length = min(spr, qty + rnd.choice((0, 1, 1, 1, 2)))
                    start = rnd.randint(0, spr - length)
                    row[start:start + length] = "0" * length
            out.extend(row)
        return "".join(out), spr, qty, allow_split
    if style == "edge":
        # one free run per row that ends (or starts) a few seats from the centre: where
        # the centred start strands a seat and the next best start is on either side
        out = []
        for _ in range(rows):
            if rnd.random() < density:
                out.extend(rnd.choice("HS") * spr)
                continue
            cut = max(0, min(spr, spr // 2 + rnd.randint(-3, qty + 3)))
            row = "0" * cut + "S" * (spr - cut)
            out.extend(row if rnd.random() < 0.5 else row[::-1])
        return "".join(out), spr, qty, allow_split
    if style == "runs":
        # alternating free and taken runs of short lengths: many runs of exactly qty,
        # qty + 1 and qty + 2 seats, where stranding decides
        out = []
        while len(out) < n:
            if rnd.random() >= density:
                out.extend("0" * rnd.randint(1, 10))
            else:
                out.extend(rnd.choice("HS") for _ in range(rnd.randint(1, 4)))
        return "".join(out[:n]), spr, qty, allow_split
    seats = "".join(rnd.choice("HS") if rnd.random() < density else "0" for _ in range(n))
    return seats, spr, qty, allow_split


def test_lua_agrees_with_the_python_policy(settings: Settings, redis_client: redis.Redis) -> None:
    loop = asyncio.new_event_loop()
    aclient = engine_client(settings.redis_url)
    engine = make_engine(aclient)
    block = new_block("policy")

    @hsettings(max_examples=300, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(cases())
    # hand-picked maps where the centred placement strands a seat, or only stranding fits
    @example(("S000000000", 10, 6, False))
    @example(("SSS0000SSS" + "0" * 10, 10, 3, False))
    @example(("SS000SSSSS" "SSSSS000SS" "000SSSS000" "SSSS00SSSS", 10, 2, False))
    @example(("SSS0000SSS", 10, 3, False))
    @example(("SSSSS000SS" "SSS000SSSS", 10, 2, False))  # fallback: front row, not centre
    @example(("0000000SSS", 10, 2, False))  # centred start strands: the start left of it
    @example(("SSS0000000", 10, 2, False))
    @example(("0S0S0S0" "0000000", 7, 5, True))
    @example(("0" * 1500, 50, 8, False))
    @example(("S" * 1499 + "0", 50, 1, False))
    def check(case: tuple[str, int, int, bool]) -> None:
        seats, spr, qty, allow_split = case
        write_seat_map(redis_client, block, seats, spr)
        before_meta = meta(redis_client, block)
        expected = choose_seats(seats, spr, qty, allow_split=allow_split)
        free = seats.count("0")
        try:
            offer = loop.run_until_complete(engine.check(block, qty, allow_split=allow_split))
        except errors.SoldOut as exc:
            assert free < qty, f"SoldOut with {free} free seats for {qty}"
            assert exc.details["available"] == free
            assert expected is None
        except errors.NoAdjacentSeats as exc:
            assert free >= qty
            assert exc.details["available"] == free
            assert expected is None, f"Lua found nothing, the spec chose {expected}"
        else:
            assert offer.seats == expected
            assert offer.price_cents == PRICE
            assert offer.expires_ms == 0
        # a check writes nothing
        assert seat_string(redis_client, block) == seats
        assert meta(redis_client, block) == before_meta
        assert redis_client.exists(block.records, block.holds) == 0

    try:
        check()
    finally:
        loop.run_until_complete(aclient.aclose())
        loop.close()


def test_check_of_a_missing_block_is_refused(settings: Settings,
                                             redis_client: redis.Redis) -> None:
    """Sanity of the harness: the check really reaches Redis (no block: unavailable)."""
    loop = asyncio.new_event_loop()
    aclient = engine_client(settings.redis_url)
    try:
        engine = make_engine(aclient)
        with pytest.raises(errors.InventoryUnavailable):
            loop.run_until_complete(engine.check(keys.BlockKeys(DAY, "nowhere"), 2))
    finally:
        loop.run_until_complete(aclient.aclose())
        loop.close()
