"""Fans who pick their seats, under real concurrency: several OS processes each send the
same overlapping picks at once, while best-available holds race them in the same block.
Exactly one picker wins a seat, a pick is all or nothing, no seat is in two holds, and a
refusal names seats that someone else really has."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from amphi.settings import Settings
from tests.engine import _race_worker
from tests.engine._support import assert_block_ok, load_reserved, meta, records, seat_string

pytestmark = pytest.mark.slow

PROCESSES = 4
ROWS, SPR = 30, 20
BEST_PER_PROCESS = 10  # at most 320 seats: best available never reaches row Z (index 500)
BACK = 25 * SPR
# Overlapping pairs and triples: in the two front rows' centre, where best available aims
# too, and in rows Z and AA, which only the pickers want. Each seat is wanted by several
# picks in every process.
FRONT = [[i, i + 1] for i in range(4, 16)] + [[SPR + i, SPR + i + 1, SPR + i + 2]
                                              for i in range(5, 14)]
BACK_PICKS = [[BACK + i, BACK + i + 1] for i in range(4, 16)] + [
    [BACK + SPR + i, BACK + SPR + i + 1, BACK + SPR + i + 2] for i in range(5, 14)]
CONTESTED = FRONT + BACK_PICKS


@pytest.fixture(scope="module")
def workers() -> Iterator[Any]:
    with _race_worker.race_pool(PROCESSES) as pool:
        yield pool


def test_concurrent_pickers_one_wins_each_seat(settings: Settings, redis_client: redis.Redis,
                                               workers: Any) -> None:
    sold = [9, 10, 30]  # some picks name a sold seat: refused whoever comes first
    block = load_reserved(redis_client, ROWS, SPR, sold=sold)
    ref = (block.event_date.isoformat(), block.section)
    reports = _race_worker.race(workers, _race_worker.picker_process, [
        (settings.redis_url, ref, p, CONTESTED, BEST_PER_PROCESS, 500 + p)
        for p in range(PROCESSES)])
    results = [r for rep in reports for r in rep["results"]]
    assert not [r for r in results if r[0] == "error"], next(
        r[1] for r in results if r[0] == "error")
    picks = [r for r in results if r[0] == "pick"]
    assert len(picks) == PROCESSES * _race_worker.PICKS_EACH * len(CONTESTED)

    seats = seat_string(redis_client, block)
    recs = records(redis_client, block)
    claimed: Counter[int] = Counter()
    won = Counter(tuple(r[2]) for r in picks if r[1] == "held")
    for r in picks:
        if r[1] == "held":  # all of what was picked, nothing else
            _, _, wanted, hold_id, got = r
            assert got == wanted and recs[hold_id]["seats"] == wanted
            claimed.update(got)
        else:  # the seats named are really someone else's, and are among those picked
            _, _, wanted, gone = r
            assert gone and set(gone) <= set(wanted)
            assert all(seats[i] in "HS" for i in gone), (gone, seats)
    assert max(won.values()) == 1, "one pick won twice"
    # where only pickers race, some pick always wins: 12 overlapping pairs in a row leave
    # at least 4 winners, 9 overlapping triples at least 3
    back_won = [w for w in won if w[0] >= BACK]
    assert len(back_won) >= 7, f"too few back-row picks won: {back_won}"
    for r in results:
        if r[0] == "reserved" and r[1] == "held":
            claimed.update(r[4])
    assert not [i for i, n in claimed.items() if n > 1], "a seat is in two holds"
    assert not [i for i in sold if seats[i] != "S"], "a sold seat was picked"
    assert [i for i, c in enumerate(seats) if c == "H"] == sorted(claimed)
    assert int(meta(redis_client, block)["held"]) == len(claimed)
    assert_block_ok(redis_client, block)
