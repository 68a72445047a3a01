"""Invariants 1 and 2 under real concurrency: several OS processes, hundreds of
simultaneous hold requests each, one reserved section that sells out and one GA block.

The control case runs a naive read-pick-write allocator (GET the seat map, choose with the
same policy, SETRANGE) with the same concurrency and shows that it double-books seats and
that the same invariant checker reports it: the race is real, and the checker would catch
an engine that lost its atomicity.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
import redis

from amphi.settings import Settings
from engine.blocks import counts
from engine.hold_types import BlockCounts
from tests.engine import _race_worker
from tests.engine._support import (
    assert_block_ok,
    block_violations,
    load_ga,
    load_reserved,
    meta,
    records,
    seat_string,
)

pytestmark = pytest.mark.slow

PROCESSES = 4
RESERVED_PER_PROCESS = 300
GA_PER_PROCESS = 100
ROWS, SPR = 30, 50
GA_CAPACITY = 900


@pytest.fixture(scope="module")
def workers() -> Iterator[tuple[ProcessPoolExecutor, Any]]:
    """PROCESSES spawned processes shared by the tests here, and their start barrier."""
    with _race_worker.race_pool(PROCESSES) as pool:
        yield pool


def _run_processes(workers: tuple[ProcessPoolExecutor, Any], target: Any,
                   args_for: Any) -> list[dict]:
    """Run `target` once in each worker process; they start together at the barrier."""
    out = _race_worker.race(workers, target, [args_for(p) for p in range(PROCESSES)])
    assert len({o["pid"] for o in out}) == PROCESSES, "not one request batch per process"
    return out


def test_concurrent_holds_keep_every_invariant(settings: Settings, redis_client: redis.Redis,
                                               workers: Any) -> None:
    sold = list(range(0, ROWS * SPR, 37))  # scattered sold seats the engine must never hold
    reserved = load_reserved(redis_client, ROWS, SPR, sold=sold)
    ga = load_ga(redis_client, GA_CAPACITY, sold=50)
    res_ref = (reserved.event_date.isoformat(), reserved.section)
    ga_ref = (ga.event_date.isoformat(), ga.section)

    reports = _run_processes(
        workers,
        _race_worker.engine_process,
        lambda p: (settings.redis_url, res_ref, ga_ref, p, RESERVED_PER_PROCESS,
                   GA_PER_PROCESS, 1000 + p),
    )
    results = [r for rep in reports for r in rep["results"]]
    errors_ = [r for r in results if r[0] == "error"]
    assert not errors_, errors_[0][1]
    dups = [r for r in results if r[0] == "dup"]
    results = [r for r in results if r[0] != "dup"]
    assert len(results) == PROCESSES * (RESERVED_PER_PROCESS + GA_PER_PROCESS)
    outcome = Counter((r[0], r[1]) for r in results)

    # the section really sold out under the spike: many were refused
    assert outcome[("reserved", "sold_out")] + outcome[("reserved", "no_adjacent")] > 100
    assert outcome[("ga", "sold_out")] > 0
    assert outcome[("reserved", "held")] > 100
    assert outcome[("reserved", "released")] > 10

    for block in (reserved, ga):
        assert_block_ok(redis_client, block)

    # invariant 1, from the callers' side: what each caller was told matches Redis
    recs = records(redis_client, reserved)
    seats = seat_string(redis_client, reserved)
    claimed: Counter[int] = Counter()
    held_qty = 0
    for r in results:
        if r[0] != "reserved" or r[1] not in ("held", "released"):
            continue
        _, status, qty, hold_id, hold_seats, allow_split = r
        assert len(hold_seats) == qty
        assert recs[hold_id]["status"] == ("active" if status == "held" else "released")
        assert recs[hold_id]["seats"] == hold_seats
        rows_used = {i // SPR for i in hold_seats}
        if not allow_split:
            assert len(rows_used) == 1 and hold_seats == list(
                range(hold_seats[0], hold_seats[0] + qty)), f"split hold {hold_seats}"
        if status == "held":
            claimed.update(hold_seats)
            held_qty += qty
            assert all(seats[i] == "H" for i in hold_seats)
    assert not [i for i, n in claimed.items() if n > 1], "a seat is in two active holds"
    assert not [i for i in sold if seats[i] != "S"], "a sold seat changed state"

    # the same (client, Idempotency-Key) sent from every process at once: one hold at most
    recs_by_client = Counter(rec["client"] for rec in recs.values())
    for j in range(_race_worker.DUPLICATES):
        ids = {r[3] for r in dups if r[2] == j and r[1] == "held"}
        assert len(ids) <= 1, f"duplicate request {j} made holds {ids}"
        assert recs_by_client[f"user:dup-{j}"] == len(ids)
        if ids:
            (hold_id,) = ids
            claimed.update(recs[hold_id]["seats"])
            held_qty += recs[hold_id]["qty"]
    assert any(r[1] == "held" for r in dups)
    assert not [i for i, n in claimed.items() if n > 1], "a seat is in two active holds"

    # invariant 2 via the public counters as well
    m = meta(redis_client, reserved)
    assert int(m["held"]) == held_qty == seats.count("H")
    assert int(m["sold"]) == len(sold) == seats.count("S")
    c = counts(redis_client, reserved)
    assert isinstance(c, BlockCounts)
    assert c.available + c.held + c.sold == c.capacity == ROWS * SPR
    assert c.available == seats.count("0")

    ga_held = sum(r[2] for r in results if r[0] == "ga" and r[1] == "held")
    gc = counts(redis_client, ga)
    assert gc is not None and gc.held == ga_held and gc.sold == 50
    assert gc.available + gc.held + gc.sold == GA_CAPACITY


def test_control_naive_read_pick_write_double_books(settings: Settings,
                                                  redis_client: redis.Redis,
                                                  workers: Any) -> None:
    reserved = load_reserved(redis_client, ROWS, SPR)
    res_ref = (reserved.event_date.isoformat(), reserved.section)
    reports = _run_processes(
        workers,
        _race_worker.naive_process,
        lambda p: (settings.redis_url, res_ref, SPR, p, RESERVED_PER_PROCESS, 2000 + p),
    )
    results = [r for rep in reports for r in rep["results"]]
    errors_ = [r for r in results if r[0] == "error"]
    assert not errors_, errors_[0][1]
    claimed: Counter[int] = Counter()
    for r in results:
        if r[1] == "held":
            claimed.update(r[4])
    double = [i for i, n in claimed.items() if n > 1]
    assert double, "the naive allocator never double-booked: the race test proves nothing"
    # and the invariant checker used on the engine notices it
    bad = block_violations(redis_client, reserved)
    assert any("two active holds" in b for b in bad), bad[:5]
    assert any("held counter" in b for b in bad), bad[:5]
