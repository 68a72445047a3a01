"""`amphi reconcile`: compare Redis with the ledger block by block, and the ledger's orders
with Stripe's succeeded payments; with `fix`, rebuild drifted blocks from the ledger and
finalise paid orders that have no tickets.

Blocks are repaired before orders: finalising needs the block in Redis (after a flush it is
missing until rebuilt). Each block's ledger view (live tickets, settled orders) is read in
one REPEATABLE READ transaction, before Redis, so an order settled in that view has its
tickets in it too, and a sale of an order not settled in it keeps its seats (it is being
finalised right now).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from rq import Queue
from sqlalchemy.orm import Session, sessionmaker

from amphi import errors
from amphi.block_spec import BlockSpec
from amphi.payments import PaymentGateway
from amphi.signing import Signer
from engine import drift, repair, scripts
from engine.drift import Expected, Finding, Snapshot
from ledger.inventory import block_specs
from ledger.models import OrderStatus
from ledger.sold import SETTLED, live_seats, settled, statuses, stuck_paid
from services import finalize, queueing

log = logging.getLogger(__name__)


@dataclass
class BlockResult:
    spec: BlockSpec
    expected: Expected
    found: list[Finding]  # before any repair
    remaining: list[Finding]  # after the repair (the same without one)
    snapshot: Snapshot  # the last one read
    rebuilt: repair.Rebuilt | None = None


@dataclass
class OrderProblem:
    order_id: str
    what: str  # "paid, no tickets" | "paid at Stripe, no tickets" | "unknown order"
    status: str  # the ledger's status when found
    fixed_status: str = ""  # after finalising

    @property
    def remaining(self) -> bool:
        return self.fixed_status not in (OrderStatus.COMPLETED, OrderStatus.REFUND_REQUIRED,
                                         OrderStatus.REFUNDED)


@dataclass
class Report:
    blocks: list[BlockResult] = field(default_factory=list)
    orders: list[OrderProblem] = field(default_factory=list)

    @property
    def drift_found(self) -> bool:
        return any(b.found for b in self.blocks) or bool(self.orders)

    @property
    def drift_left(self) -> bool:
        return any(b.remaining for b in self.blocks) or any(o.remaining for o in self.orders)

    @property
    def oversold(self) -> int:
        """Blocks where the ledger itself sold a seat twice or beyond capacity."""
        return sum(any(f.kind == drift.OVERSOLD for f in b.remaining) for b in self.blocks)


@dataclass(frozen=True)
class Sources:
    redis: scripts.Client
    sessions: sessionmaker[Session]
    payments: PaymentGateway
    finalize_deps: finalize.Deps


def sources(redis_client: scripts.Client, sessions: sessionmaker[Session],
            payments: PaymentGateway, queue: Queue, signer: Signer) -> Sources:
    deps = queueing.finalize_deps(redis=redis_client, sessions=sessions, payments=payments,
                              queue=queue, signer=signer)
    return Sources(redis_client, sessions, payments, deps)


def _ledger_view(src: Sources, spec: BlockSpec) -> tuple[list[int | None], set[str]]:
    """Live tickets and settled orders of a block, as one consistent ledger snapshot."""
    with src.sessions() as session:
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        done = settled(session, spec.block.event_date, spec.block.section)
        seats = live_seats(session, spec.block.event_date, spec.block.section)
    return seats, done


def _expected(spec: BlockSpec, seats: list[int | None], done: set[str]) -> Expected:
    reserved = spec.kind == "reserved"
    return Expected(
        reserved=reserved, capacity=spec.capacity, rows=spec.rows,
        seats_per_row=spec.seats_per_row, price_cents=spec.price_cents,
        active=spec.active, ticket_count=len(seats), settled_orders=frozenset(done),
        ticket_seats=tuple(i for i in seats if i is not None) if reserved else (),
        accessible=spec.accessible, accessible_released=spec.accessible_released,
    )


def check_block(src: Sources, spec: BlockSpec, *, fix: bool, stale_after_ms: int) -> BlockResult:
    # The ledger first: a sale that completes after this view is in Redis's sales as an
    # order not settled here, so it is expected sold, never reported or freed.
    seats, done = _ledger_view(src, spec)
    snap = repair.snapshot(src.redis, spec.block)
    expected = _expected(spec, seats, done)
    found = drift.compare(snap, expected, stale_after_ms=stale_after_ms)
    result = BlockResult(spec, expected, found, found, snap)
    if not (fix and found and drift.fixable(found)):
        return result
    try:
        result.rebuilt = repair.rebuild(
            src.redis, spec,
            ticket_seats=list(expected.ticket_seats) if expected.reserved else len(seats),
            settled_orders=sorted(done),
        )
    except errors.BlockConflict as exc:
        # Redis has this block with other rows or seats a row: a person must decide. The
        # other blocks and the paid orders are still checked (and fixed).
        log.error("block not rebuilt", extra={"block": spec.block.tag, "error": exc.message})
        result.found = result.remaining = [*found, Finding(drift.GEOMETRY, exc.message)]
        return result
    log.warning("block rebuilt from the ledger",
                extra={"block": spec.block.tag, "findings": [f.kind for f in found],
                       "seats_changed": result.rebuilt.seats_changed,
                       "holds_ended": result.rebuilt.holds_ended})
    seats, done = _ledger_view(src, spec)
    result.expected = _expected(spec, seats, done)
    result.snapshot = repair.snapshot(src.redis, spec.block)
    result.remaining = drift.compare(result.snapshot, result.expected,
                                     stale_after_ms=stale_after_ms)
    return result


def order_problems(src: Sources, *, stuck_after: timedelta, stripe_since: datetime,
                   ) -> list[OrderProblem]:
    """Paid orders without tickets: in the ledger (finalisation failed for good or is
    stuck), and at Stripe (succeeded intents whose order did not complete)."""
    now = datetime.now(UTC)
    with src.sessions() as session:
        problems = {str(o.id): OrderProblem(str(o.id), "paid, no tickets", o.status.value)
                    for o in stuck_paid(session, paid_before=now - stuck_after)}
    intents = [i for i in src.payments.succeeded_intents(since=stripe_since)
               if datetime.fromtimestamp(i.created, UTC) < now - stuck_after]
    ids = {}
    for intent in intents:
        try:
            ids[intent.id] = uuid.UUID(intent.metadata.get("order_id", ""))
        except ValueError:
            problems[intent.id] = OrderProblem(intent.id, "paid at Stripe, unknown order", "")
    with src.sessions() as session:
        found = statuses(session, ids.values())
    for intent_id, order_id in ids.items():
        status = found.get(order_id)
        if status is None:
            problems[intent_id] = OrderProblem(intent_id, "paid at Stripe, unknown order", "")
        elif status not in SETTLED:
            problems.setdefault(str(order_id), OrderProblem(
                str(order_id), "paid at Stripe, no tickets", status.value))
    return list(problems.values())


def fix_order(src: Sources, problem: OrderProblem) -> None:
    if problem.what.endswith("unknown order"):
        return  # nothing in the ledger to finalise: a person must look at the payment
    try:
        problem.fixed_status = finalize.finalize_order(
            src.finalize_deps, uuid.UUID(problem.order_id)).value
    except errors.DomainError as exc:
        log.error("could not finalise a paid order",
                  extra={"order_id": problem.order_id, "error": exc.code})
        problem.fixed_status = f"error: {exc.code}"
    else:
        log.warning("reconcile finalised a paid order",
                    extra={"order_id": problem.order_id, "status": problem.fixed_status})


def reconcile(src: Sources, *, fix: bool, dates: set[date] | None = None,
              stale_after: timedelta = timedelta(seconds=60),
              stuck_after: timedelta = timedelta(minutes=15),
              stripe_since: datetime | None = None,
              progress: Callable[..., Iterable[BlockSpec]] | None = None) -> Report:
    """`progress`: a tqdm-like wrapper for the block loop (the CLI passes tqdm)."""
    with src.sessions() as session:
        specs = [s for s in block_specs(session) if dates is None or s.block.event_date in dates]
    report = Report()
    loop = progress(specs, desc="blocks", unit="block") if progress else specs
    for spec in loop:
        report.blocks.append(check_block(src, spec, fix=fix,
                                         stale_after_ms=int(stale_after.total_seconds() * 1000)))
    since = stripe_since or datetime.now(UTC) - timedelta(days=30)
    report.orders = order_problems(src, stuck_after=stuck_after, stripe_since=since)
    if fix:
        for problem in report.orders:
            fix_order(src, problem)
    return report
