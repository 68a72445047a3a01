"""Where Redis and the ledger disagree about one seat block: pure comparison, no I/O.

The expected state: sold seats are the ledger's live tickets plus the seats of sales whose
order the ledger has not settled yet (a payment being finalised now); held seats are those
of active holds; the counters follow from both.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from amphi.accessible import AccessiblePair, withhold
from amphi.block_spec import BlockKind
from amphi.geometry import COMPANION, WHEELCHAIR

# Finding kinds. The first ones risk a double sale; the last one cannot be fixed in Redis.
MISSING_BLOCK = "missing_block"  # no block in Redis: nothing protects its sold seats
SOLD_NOT_IN_REDIS = "sold_not_in_redis"  # a sold seat is free or held in Redis
DOUBLE_HELD = "double_held"  # a seat in two active holds
HELD_AND_SOLD = "held_and_sold"  # an active hold has a sold seat
SOLD_ONLY_IN_REDIS = "sold_only_in_redis"  # Redis says sold, the ledger has no ticket
HELD_WITHOUT_HOLD = "held_without_hold"  # 'H' with no active hold behind it
HOLD_SEAT_NOT_HELD = "hold_seat_not_held"  # an active hold's seat is not 'H'
STALE_HOLD = "stale_hold"  # active long past its expiry: reclaim is not running
HELD_COUNTER = "held_counter"
SOLD_COUNTER = "sold_counter"
WITHHELD_COUNTER = "withheld_counter"  # meta's withheld is not the 'W' and 'C' seats
ACCESSIBLE_LAYOUT = "accessible_layout"  # a free seat of the pairs is not withheld, or a
# withheld seat is not one of them (while the block withholds them)
CLIENT_COUNTER = "client_counter"  # a client's active-hold count (the cap) is wrong
RECLAIM_BOUND = "reclaim_bound"  # meta's due_ms is after an active hold's expiry: the hot
# path would leave that hold to the sweeper (see lua/_block.lua)
SETTINGS = "settings"  # price or on-sale flag differs from the ledger
OVERSOLD = "oversold"  # the ledger itself sold more than the block has: needs people
GEOMETRY = "geometry"  # kind, capacity or rows differ from the ledger: needs people


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    detail: str
    seats: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One block in Redis, read in one transaction."""

    now_ms: int
    meta: dict[str, str]  # empty: the block is not in Redis
    seats: str  # reserved: one character a seat
    holds: dict[str, int]  # active hold id -> expires_ms
    records: dict[str, dict[str, Any]]  # hold id -> record (see lua/_block.lua)
    sales: dict[str, dict[str, Any]]  # order id -> {mode, seats, qty}
    clients: dict[str, int]  # client -> its active holds, as the block counts them


@dataclass(frozen=True, slots=True)
class Expected:
    """What the ledger says about the block."""

    reserved: bool
    capacity: int
    rows: int  # general admission: 1 row of `capacity`, as the block is loaded
    seats_per_row: int
    price_cents: int
    active: bool
    ticket_seats: tuple[int, ...] = ()  # reserved: seat index of each live ticket
    ticket_count: int = 0  # live tickets (reserved and GA)
    settled_orders: frozenset[str] = field(default_factory=frozenset)
    accessible: tuple[AccessiblePair, ...] = ()  # the section's pairs
    accessible_released: bool = False  # the box office released them for this date


def in_flight_sales(snap: Snapshot, exp: Expected) -> list[dict[str, Any]]:
    """Sales Redis made for orders the ledger has not settled: their seats stay sold."""
    return [sale for order_id, sale in snap.sales.items() if order_id not in exp.settled_orders]


def compare(snap: Snapshot, exp: Expected, *, stale_after_ms: int) -> list[Finding]:
    findings: list[Finding] = []
    duplicates = sorted(i for i, n in Counter(exp.ticket_seats).items() if n > 1)
    if duplicates:
        findings.append(Finding(OVERSOLD, f"{len(duplicates)} seats have two live tickets",
                                tuple(duplicates)))
    if exp.ticket_count > exp.capacity:
        findings.append(Finding(OVERSOLD, f"{exp.ticket_count} live tickets for "
                                          f"{exp.capacity} seats"))
    if not snap.meta:
        findings.append(Finding(MISSING_BLOCK, "the block is not loaded in Redis"))
        return findings
    kind = str(BlockKind.RESERVED if exp.reserved else BlockKind.GA)
    shape = (kind, str(exp.capacity), str(exp.rows), str(exp.seats_per_row))
    found = tuple(snap.meta.get(k) for k in ("kind", "capacity", "rows", "seats_per_row"))
    if found != shape:
        # A larger capacity in Redis sells seats the venue does not have, other rows put
        # tickets on other seats; the seat-level checks below would compare against the
        # wrong geometry, so they are skipped.
        findings.append(Finding(GEOMETRY, f"{_shape(*found)}, ledger says {_shape(*shape)}"))
        return findings

    flying = in_flight_sales(snap, exp)
    active = {h: snap.records.get(h, {}) for h in snap.holds}
    stale = [h for h, exp_ms in snap.holds.items() if exp_ms < snap.now_ms - stale_after_ms]
    if stale:
        findings.append(Finding(STALE_HOLD, f"{len(stale)} holds expired over "
                                            f"{stale_after_ms // 1000}s ago and still held"))
    held = sum(int(r.get("qty", 0)) for r in active.values())
    if exp.reserved:
        sold_seats = set(exp.ticket_seats) | {i for s in flying for i in s.get("seats", [])}
        sold = len(sold_seats)
        findings += _seat_findings(snap, exp.capacity, sold_seats, active)
        findings += _accessible_findings(snap, exp)
    else:
        sold = exp.ticket_count + sum(int(s.get("qty", 0)) for s in flying)
    if int(snap.meta.get("held", -1)) != held:
        findings.append(Finding(HELD_COUNTER, f"held is {snap.meta.get('held')}, "
                                              f"active holds have {held}"))
    if int(snap.meta.get("sold", -1)) != sold:
        findings.append(Finding(SOLD_COUNTER, f"sold is {snap.meta.get('sold')}, "
                                              f"expected {sold}"))
    per_client = Counter(str(r.get("client", "")) for r in active.values())
    counted = snap.clients
    wrong = {c for c in set(per_client) | set(counted) if per_client[c] != counted.get(c, 0)}
    if wrong:
        findings.append(Finding(CLIENT_COUNTER, f"{len(wrong)} clients' active-hold counts "
                                                "are wrong"))
    due, earliest = snap.meta.get("due_ms"), min(snap.holds.values(), default=None)
    if due is not None and earliest is not None and int(due) > earliest:
        findings.append(Finding(RECLAIM_BOUND, f"due_ms is {due}, an active hold expires at "
                                               f"{earliest}"))
    if (snap.meta.get("price_cents") != str(exp.price_cents)
            or snap.meta.get("active") != ("1" if exp.active else "0")):
        findings.append(Finding(SETTINGS, f"price {snap.meta.get('price_cents')}/active "
                                          f"{snap.meta.get('active')}, ledger says "
                                          f"{exp.price_cents}/{int(exp.active)}"))
    return findings


def _shape(kind: str | None, capacity: str | None, rows: str | None,
           per_row: str | None) -> str:
    layout = f" ({rows} rows of {per_row})" if kind == "reserved" else ""
    return f"{kind} of {capacity} seats{layout}"


def _seat_findings(snap: Snapshot, capacity: int, sold: set[int],
                   active: dict[str, dict[str, Any]]) -> list[Finding]:
    findings: list[Finding] = []
    held_by = Counter(i for r in active.values() for i in r.get("seats", []))
    seats = snap.seats.ljust(capacity, "?")

    def check(kind: str, what: str, bad: list[int]) -> None:
        if bad:
            findings.append(Finding(kind, f"{len(bad)} {what}", tuple(sorted(bad))))

    check(SOLD_NOT_IN_REDIS, "sold seats are not sold in Redis",
          [i for i in sold if seats[i] != "S"])
    check(DOUBLE_HELD, "seats are in two active holds", [i for i, n in held_by.items() if n > 1])
    check(HELD_AND_SOLD, "seats of active holds are sold", [i for i in held_by if i in sold])
    check(SOLD_ONLY_IN_REDIS, "seats are sold in Redis without a ticket",
          [i for i, c in enumerate(seats) if c == "S" and i not in sold])
    check(HELD_WITHOUT_HOLD, "seats are held without an active hold",
          [i for i, c in enumerate(seats) if c == "H" and i not in held_by])
    check(HOLD_SEAT_NOT_HELD, "seats of active holds are not held",
          [i for i in held_by if seats[i] != "H" and i not in sold])
    return findings


def _accessible_findings(snap: Snapshot, exp: Expected) -> list[Finding]:
    findings: list[Finding] = []
    if len(snap.seats) != exp.capacity:
        return findings  # the seat-level findings report the seats themselves
    withheld = sum(1 for c in snap.seats if c in (WHEELCHAIR, COMPANION))
    if int(snap.meta.get("withheld", 0)) != withheld:
        findings.append(Finding(WITHHELD_COUNTER, f"withheld is {snap.meta.get('withheld', 0)}"
                                                  f", {withheld} seats are 'W' or 'C'"))
    released = exp.accessible_released or snap.meta.get("access_released") == "1"
    should = withhold(snap.seats, () if released else exp.accessible)
    wrong = [i for i, (a, b) in enumerate(zip(snap.seats, should, strict=True)) if a != b]
    if wrong:
        findings.append(Finding(ACCESSIBLE_LAYOUT, f"{len(wrong)} seats are not withheld as "
                                                   "the section's accessible seats say",
                                tuple(wrong)))
    return findings


def fixable(findings: list[Finding]) -> bool:
    """Everything but a ledger that sold a seat twice, or a block whose geometry is not the
    ledger's (lua/rebuild_block.lua refuses to remap seats), can be fixed by rebuilding."""
    return all(f.kind not in (OVERSOLD, GEOMETRY) for f in findings)
