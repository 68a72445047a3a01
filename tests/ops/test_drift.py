"""engine.drift.compare on hand-made snapshots: each finding kind, and the sales of orders
the ledger has not settled (a finalisation in progress) counted as sold."""

from __future__ import annotations

from dataclasses import replace

import pytest

from engine import drift
from engine.drift import Expected, Finding, Snapshot

NOW = 10_000_000
STALE_MS = 60_000
CAPACITY = 10  # a reserved block of 2 rows x 5 seats


def hold(client: str, seats: list[int], expires: int = NOW + 300_000) -> dict:
    return {"status": "active", "client": client, "qty": len(seats), "seats": seats,
            "expires_ms": expires}


def snap(seats: str = "SS" + "0" * 8, *, held: int = 0, sold: int = 2,
         holds: dict[str, dict] | None = None, sales: dict[str, dict] | None = None,
         clients: dict[str, int] | None = None, price: str = "12500",
         active: str = "1") -> Snapshot:
    holds = holds or {}
    meta = {"kind": "reserved", "capacity": str(CAPACITY), "rows": "2", "seats_per_row": "5",
            "price_cents": price, "active": active, "held": str(held), "sold": str(sold)}
    return Snapshot(now_ms=NOW, meta=meta, seats=seats,
                    holds={h: r["expires_ms"] for h, r in holds.items()},
                    records=holds, sales=sales or {}, clients=clients or {})


EXPECTED = Expected(reserved=True, capacity=CAPACITY, rows=2, seats_per_row=5,
                    price_cents=12500, active=True, ticket_seats=(0, 1), ticket_count=2,
                    settled_orders=frozenset({"o-1"}))


def kinds(findings: list[Finding]) -> list[str]:
    return [f.kind for f in findings]


def only(findings: list[Finding], kind: str) -> Finding:
    assert kinds(findings) == [kind], findings
    return findings[0]


def compare(s: Snapshot, e: Expected = EXPECTED) -> list[Finding]:
    return drift.compare(s, e, stale_after_ms=STALE_MS)


def test_a_block_that_agrees_has_no_findings() -> None:
    s = snap("SSHH000000", held=2, holds={"h1": hold("fan-a", [2, 3])}, clients={"fan-a": 1},
             sales={"o-1": {"mode": "hold", "seats": [0, 1], "qty": 2}})
    assert compare(s) == []


def test_missing_block() -> None:
    s = Snapshot(now_ms=NOW, meta={}, seats="", holds={}, records={}, sales={}, clients={})
    assert kinds(compare(s)) == [drift.MISSING_BLOCK]


def test_a_sold_seat_free_in_redis() -> None:
    f = only(compare(snap("S000000000", sold=2)), drift.SOLD_NOT_IN_REDIS)
    assert f.seats == (1,)


def test_a_sold_seat_held_in_redis_is_two_findings() -> None:
    # seat 1 is ticketed but a hold has it: both "not sold in Redis" and "held and sold"
    s = snap("SH00000000", held=1, holds={"h1": hold("fan-a", [1])}, clients={"fan-a": 1})
    found = compare(s)
    assert kinds(found) == [drift.SOLD_NOT_IN_REDIS, drift.HELD_AND_SOLD], found
    assert [f.seats for f in found] == [(1,), (1,)]


def test_double_held() -> None:
    s = snap("SSH0000000", held=2, clients={"fan-a": 1, "fan-b": 1},
             holds={"h1": hold("fan-a", [2]), "h2": hold("fan-b", [2])})
    assert only(compare(s), drift.DOUBLE_HELD).seats == (2,)


def test_sold_only_in_redis() -> None:
    found = compare(snap("SSS0000000", sold=3))
    assert kinds(found) == [drift.SOLD_ONLY_IN_REDIS, drift.SOLD_COUNTER], found
    assert found[0].seats == (2,)
    # the counter alone agreeing with the ledger does not hide the seat
    assert only(compare(snap("SSS0000000", sold=2)), drift.SOLD_ONLY_IN_REDIS).seats == (2,)


def test_held_without_hold() -> None:
    found = compare(snap("SS0H000000", held=0))
    assert only(found, drift.HELD_WITHOUT_HOLD).seats == (3,)


def test_hold_seat_not_held() -> None:
    s = snap("SS00000000", held=1, holds={"h1": hold("fan-a", [4])}, clients={"fan-a": 1})
    assert only(compare(s), drift.HOLD_SEAT_NOT_HELD).seats == (4,)


def test_stale_hold_only_past_the_grace() -> None:
    recent = snap("SSH0000000", held=1, clients={"fan-a": 1},
                  holds={"h1": hold("fan-a", [2], expires=NOW - STALE_MS + 1)})
    assert compare(recent) == []  # expired, but the reclaim may just not have run yet
    old = snap("SSH0000000", held=1, clients={"fan-a": 1},
               holds={"h1": hold("fan-a", [2], expires=NOW - STALE_MS - 1)})
    assert "1 holds" in only(compare(old), drift.STALE_HOLD).detail


def test_reclaim_bound_after_an_active_hold_expires() -> None:
    holds = {"h1": hold("fan-a", [2], expires=NOW + 5_000)}
    fine = snap("SSH0000000", held=1, clients={"fan-a": 1}, holds=holds)
    for due in (NOW + 5_000, NOW - 1):  # a bound may be stale, never late
        assert compare(replace(fine, meta={**fine.meta, "due_ms": str(due)})) == []
    late = replace(fine, meta={**fine.meta, "due_ms": str(NOW + 5_001)})
    assert "an active hold expires at" in only(compare(late), drift.RECLAIM_BOUND).detail
    assert compare(replace(late, holds={}, records={}, meta={**late.meta, "held": "0"},
                           seats="SS00000000", clients={})) == []


def test_counters() -> None:
    assert only(compare(snap(held=3)), drift.HELD_COUNTER)
    assert only(compare(snap(sold=1)), drift.SOLD_COUNTER)


@pytest.mark.parametrize("clients", [{"fan-a": 2}, {}, {"fan-a": 1, "ghost": 1}])
def test_client_counter(clients: dict[str, int]) -> None:
    s = snap("SSH0000000", held=1, holds={"h1": hold("fan-a", [2])}, clients=clients)
    assert only(compare(s), drift.CLIENT_COUNTER)


@pytest.mark.parametrize(("price", "active"), [("100", "1"), ("12500", "0")])
def test_settings(price: str, active: str) -> None:
    assert only(compare(snap(price=price, active=active)), drift.SETTINGS)


@pytest.mark.parametrize("change", [{"capacity": "12"}, {"kind": "ga"},
                                    {"rows": "5", "seats_per_row": "2"}])
def test_geometry_is_drift_that_needs_people(change: dict[str, str]) -> None:
    """A block whose kind, capacity or rows are not the ledger's: with a larger capacity
    Redis would sell seats the venue does not have, with other rows tickets would name
    other seats. Rebuilding refuses to remap seats."""
    s = snap()
    wrong = replace(s, meta={**s.meta, **change})
    f = only(compare(wrong), drift.GEOMETRY)
    m = wrong.meta
    layout = f" ({m['rows']} rows of {m['seats_per_row']})" if m["kind"] == "reserved" else ""
    assert f.detail == (f"{m['kind']} of {m['capacity']} seats{layout}, "
                        "ledger says reserved of 10 seats (2 rows of 5)")
    assert not drift.fixable([f, Finding(drift.SOLD_COUNTER, "x")])


def test_oversold_ledger_is_not_fixable() -> None:
    twice = replace(EXPECTED, ticket_seats=(0, 1, 1), ticket_count=3)
    found = compare(snap(), twice)
    assert drift.OVERSOLD in kinds(found)
    assert next(f for f in found if f.kind == drift.OVERSOLD).seats == (1,)
    assert not drift.fixable(found)
    too_many = Expected(reserved=False, capacity=5, rows=1, seats_per_row=5, price_cents=4500,
                        active=True, ticket_count=6)
    assert drift.OVERSOLD in kinds(compare(snap(), too_many))
    assert drift.fixable([Finding(drift.SOLD_COUNTER, "x")])


def test_an_unsettled_order_sale_is_expected_sold() -> None:
    """Order o-2 is paid and being finalised: Redis sold it seats 5 and 6, the ledger has
    no tickets for them yet. That is not drift; once o-2 is settled (tickets written or
    refunded) its sale no longer counts, and seats without tickets are."""
    sales = {"o-1": {"mode": "hold", "seats": [0, 1], "qty": 2},
             "o-2": {"mode": "hold", "seats": [5, 6], "qty": 2}}
    s = snap("SS000SS000", sold=4, sales=sales)
    assert compare(s) == []
    settled = replace(EXPECTED, settled_orders=frozenset({"o-1", "o-2"}))
    found = compare(s, settled)
    assert kinds(found) == [drift.SOLD_ONLY_IN_REDIS, drift.SOLD_COUNTER], found
    assert found[0].seats == (5, 6)


def test_general_admission_counts() -> None:
    ga = Expected(reserved=False, capacity=100, rows=1, seats_per_row=100, price_cents=4500,
                  active=True, ticket_count=3, settled_orders=frozenset({"o-1"}))
    meta = {"kind": "ga", "capacity": "100", "rows": "1", "seats_per_row": "100",
            "price_cents": "4500", "active": "1",
            "held": "2", "sold": "5"}
    sales = {"o-1": {"mode": "hold", "seats": [], "qty": 3},
             "o-2": {"mode": "hold", "seats": [], "qty": 2}}  # in flight: sold, no tickets
    rec = {"status": "active", "client": "fan-a", "qty": 2, "seats": [],
           "expires_ms": NOW + 1000}
    s = Snapshot(now_ms=NOW, meta=meta, seats="", holds={"h1": NOW + 1000},
                 records={"h1": rec}, sales=sales, clients={"fan-a": 1})
    assert drift.compare(s, ga, stale_after_ms=STALE_MS) == []
    done = replace(ga, settled_orders=frozenset({"o-1", "o-2"}))
    assert kinds(drift.compare(s, done, stale_after_ms=STALE_MS)) == [drift.SOLD_COUNTER]
