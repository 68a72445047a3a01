"""Order finalisation: succeeded payments become sold seats, tickets and festival passes,
exactly once, whatever runs it (the webhook's job, demo or manual confirm, reconcile) and
however often. A batch of payments is finalised in one transaction:

1. lock the orders (in id order: concurrent batches wait, never deadlock); a final order
   only records its Stripe event.
2. Redis: `sell_hold.lua` sells every open order its seats, one pipelined round trip. It
   is idempotent per order: the request that accepted the payment already sold them, so
   this replays that sale. If the hold had ended before the payment arrived, the sale
   re-takes the same seats or the best available; if none are left, the order needs a
   refund.
3. write every sold order's tickets and comp passes, mark the orders completed, record the
   Stripe events: a few statements and one commit for the whole batch.
4. queue the emails (one job, just before the commit); after it, issue the refunds.

An order whose block Redis has lost is recorded paid and reported as not finalised (the job
is retried); the rest of its batch completes. When a batch fails otherwise, its payments are
finalised one at a time, so one order that cannot be never holds up the others.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from amphi import errors, logs
from amphi.geometry import Geometry, SeatLine, seat_lines
from amphi.keys import BlockKeys
from amphi.payments import PaymentGateway
from amphi.signing import Signer
from engine import sales, scripts, waiting_room
from ledger.models import Order, OrderStatus, SectionType
from ledger.orders import OPEN, EventRecord, lock_order, lock_orders, record_stripe_events
from ledger.tickets import issue_tickets

log = logging.getLogger(__name__)

NO_SEATS_LEFT = "The section had no seats left when the payment arrived."


def _ignore(_: list[float]) -> None:
    pass


@dataclass(frozen=True)
class Deps:
    redis: scripts.Client
    sessions: sessionmaker[Session]
    payments: PaymentGateway
    enqueue_emails: Callable[[list[uuid.UUID]], None]
    signer: Signer
    # seconds from payment accepted to tickets committed, of each order this call completed
    observe_latency: Callable[[list[float]], None] = field(default=_ignore)


@dataclass(frozen=True, slots=True)
class StripeEventRef:
    id: str
    type: str


@dataclass(frozen=True, slots=True)
class Confirmer:
    """The fan who says they paid (a confirm): the order must be theirs (`user_id`, None for
    a guest) and checked out. Checked on the locked order, so that a demo confirm costs no
    read of its own before its batch."""
    user_id: str | None


@dataclass(frozen=True, slots=True)
class Payment:
    """A succeeded payment to finalise: its order, the Stripe event that reported it (none
    for a confirm), when it was accepted (epoch seconds, for the latency histogram) and,
    for a confirm, who confirms."""
    order_id: uuid.UUID
    event: StripeEventRef | None = None
    accepted_at: float | None = None
    confirmer: Confirmer | None = None


@dataclass(frozen=True, slots=True)
class Final:
    status: OrderStatus
    order_number: str


Outcome = Final | Exception


def check_owner(owner: str | None, user_id: str | None, what: str) -> None:
    """A signed-in fan's hold or order is theirs alone; a guest's is anyone's who has its id."""
    if owner and user_id != owner:
        raise errors.Forbidden(f"This {what} belongs to another account.")


def _refusal(order: Order, confirmer: Confirmer) -> Exception | None:
    try:
        check_owner(order.user_id, confirmer.user_id, "order")
    except errors.Forbidden as refused:
        return refused
    if order.payment_intent_id is None:
        return errors.CheckoutConflict("This order has no payment yet; check out first.")
    return None


def _now() -> datetime:
    return datetime.now(UTC)


def sale_request(order: Order) -> sales.SaleRequest:
    return sales.SaleRequest(
        BlockKeys(order.event_date, order.section.slug), str(order.id), str(order.hold_id),
        order.quantity, [ln.seat_index for ln in order.lines if ln.seat_index is not None])


def _seats(order: Order, sale: sales.Sale) -> list[SeatLine]:
    section = order.section
    geometry = (Geometry(section.rows or 1, section.seats_per_row or 1)
                if section.section_type == SectionType.RESERVED else None)
    return seat_lines(geometry, sale.seats, order.quantity)


def _sell_and_issue(deps: Deps, session: Session, orders: list[Order]
                    ) -> tuple[list[tuple[Order, sales.Sale]], dict[uuid.UUID, Exception]]:
    """Inside the batch's transaction: sell the open orders their seats, write the tickets of
    those that got seats, mark for a refund those that got none. An order whose block Redis
    has lost stays paid, without tickets, until `reconcile --fix` rebuilds the block (never
    a refund: the seats are not gone, only unknown). Returns what was sold, and the orders
    stopped that way."""
    open_orders = [o for o in orders if o.status in OPEN]
    if not open_orders:
        return [], {}
    found = sales.sell_each(deps.redis, [sale_request(o) for o in open_orders])
    now, sold, issues = _now(), [], []
    stopped: dict[uuid.UUID, Exception] = {}
    for order, sale in zip(open_orders, found, strict=True):
        order.paid_at = order.paid_at or now
        if isinstance(sale, Exception):
            order.status = OrderStatus.PAID
            stopped[order.id] = sale
        elif sale is None:
            order.status, order.failure_reason = OrderStatus.REFUND_REQUIRED, NO_SEATS_LEFT
        else:
            seats = _seats(order, sale)
            if [ln.seat_index for ln in order.lines] != [s.seat_index for s in seats]:
                for line, seat in zip(order.lines, seats, strict=True):
                    line.seat_index, line.row, line.seat = seat.seat_index, seat.row, seat.seat
            order.status, order.completed_at = OrderStatus.COMPLETED, now
            sold.append((order, sale))
            issues.append((order, seats))
    issue_tickets(session, issues, deps.signer)
    return sold, stopped


def _finalize_batch(deps: Deps, payments: Sequence[Payment]) -> list[Outcome]:
    ids = sorted({p.order_id for p in payments})
    with deps.sessions.begin() as session:
        locked = lock_orders(session, ids)
        by_id = {o.id: o for o in locked}
        refused = {i: refusal for i, p in enumerate(payments)
                   if p.confirmer and p.order_id in by_id
                   and (refusal := _refusal(by_id[p.order_id], p.confirmer))}
        # an order is finalised unless every payment of it in the batch is a refused confirm
        paid = {p.order_id for i, p in enumerate(payments) if i not in refused}
        orders = [o for o in locked if o.id in paid]
        sold, stopped = _sell_and_issue(deps, session, orders)
        seen: set[str] = set()
        events = []
        for p in payments:
            if p.event and p.event.id not in seen and p.order_id in by_id:
                seen.add(p.event.id)
                events.append(EventRecord(p.event.id, p.event.type,
                                          by_id[p.order_id].payment_intent_id, p.order_id))
        record_stripe_events(session, events)
        outcomes: dict[uuid.UUID, Outcome] = {
            o.id: stopped.get(o.id) or Final(o.status, o.order_number) for o in orders}
        if sold:
            # Queued before the commit, so that a failure to queue rolls the batch back (to be
            # retried) instead of leaving tickets without their email. The email job locks
            # each order, so it waits for this commit; one that finds no completed order
            # (this commit failed) sends nothing.
            session.flush()
            deps.enqueue_emails(sorted(o.id for o, _ in sold))
    for missing in set(ids) - by_id.keys():
        outcomes[missing] = errors.OrderNotFound()
        if any(p.order_id == missing and not p.confirmer for p in payments):
            # a payment for an order we do not have (a fan's confirm of one is their 404)
            log.error("finalisation of an unknown order", extra={"order_id": str(missing)})
    _after_commit(deps, payments, sold)
    for order_id, outcome in outcomes.items():
        if isinstance(outcome, Final) and outcome.status == OrderStatus.REFUND_REQUIRED:
            outcomes[order_id] = Final(_refund(deps, order_id), outcome.order_number)
    return [refused.get(i) or outcomes[p.order_id] for i, p in enumerate(payments)]


def _after_commit(deps: Deps, payments: Sequence[Payment],
                  sold: list[tuple[Order, sales.Sale]]) -> None:
    if not sold:
        return
    for order, sale in sold:
        log.info("tickets issued", extra={"order_id": str(order.id),
                                          "hold_id": str(order.hold_id), "mode": sale.mode,
                                          "tickets": order.quantity, "seats": sale.seats})
    try:  # the fans' turns in a waiting room end with their orders; else they run out
        waiting_room.end_turns_of_holds(
            deps.redis, [(order.event_date, str(order.hold_id)) for order, _ in sold])
    except Exception as exc:
        log.warning("waiting-room turns not ended; they run out instead",
                    extra={"error": f"{type(exc).__name__}: {exc}"[:200]})
    done = {order.id for order, _ in sold}
    committed = time.time()
    accepted = {p.order_id: p.accepted_at for p in payments if p.accepted_at}
    deps.observe_latency([committed - accepted[i] for i in done if i in accepted])


def finalize_orders(deps: Deps, payments: Sequence[Payment]) -> list[Outcome]:
    """Issue the tickets of paid orders (the caller has verified each payment, or names the
    fan who confirms it): each payment's outcome, in order: its order's final status, or
    the exception that stopped it (it is safe to run again) or refused the confirm."""
    try:
        return _finalize_batch(deps, payments)
    except Exception as exc:
        if len(payments) == 1:
            return [exc]
        log.warning("batch finalisation failed; finalising its orders one at a time",
                    extra={"orders": len(payments), "error": repr(exc)})
    outcomes: list[Outcome] = []
    for payment in payments:
        try:
            outcomes += _finalize_batch(deps, [payment])
        except Exception as exc:
            outcomes.append(exc)
    return outcomes


def finalize_order(deps: Deps, order_id: uuid.UUID, *,
                   event: StripeEventRef | None = None) -> OrderStatus:
    """One order's finalisation; raises what stopped it."""
    with logs.bound(order_id=str(order_id)):
        outcome = finalize_orders(deps, [Payment(order_id, event)])[0]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome.status


def _refund(deps: Deps, order_id: uuid.UUID) -> OrderStatus:
    """Refund a paid order that could not be seated (Stripe); demo mode leaves it marked."""
    log.warning("a paid order has no seats: refund",
                extra={"order_id": str(order_id)})
    with deps.sessions.begin() as session:
        order = session.get(Order, order_id)
        assert order is not None
        intent_id = order.payment_intent_id
    if deps.payments.demo or not intent_id:
        return OrderStatus.REFUND_REQUIRED
    refund_id = deps.payments.refund(intent_id, order_id=str(order_id))
    with deps.sessions.begin() as session:
        order = lock_order(session, order_id)
        assert order is not None
        if order.status == OrderStatus.REFUND_REQUIRED:
            order.status = OrderStatus.REFUNDED
            order.failure_reason += f" Refunded ({refund_id})."
    log.info("order refunded", extra={"order_id": str(order_id), "refund_id": refund_id})
    return OrderStatus.REFUNDED


def fail_order(deps: Deps, order_id: uuid.UUID, *, event: StripeEventRef | None = None,
               reason: str = "The payment failed.") -> OrderStatus:
    """A failed or canceled payment: the pending order fails and its hold is released."""
    with logs.bound(order_id=str(order_id)), deps.sessions.begin() as session:
        order = lock_order(session, order_id)
        if order is None:
            raise errors.OrderNotFound()
        if event is not None:
            record_stripe_events(session, [EventRecord(event.id, event.type,
                                                       order.payment_intent_id, order.id)])
        if order.status != OrderStatus.PENDING:
            return order.status
        order.status, order.failure_reason = OrderStatus.FAILED, reason
        block = BlockKeys(order.event_date, order.section.slug)
        hold_id = str(order.hold_id)
    released = sales.release_for_order(deps.redis, block, hold_id)
    log.info("order failed", extra={"order_id": str(order_id), "hold_id": hold_id,
                                    "hold_released": released})
    return OrderStatus.FAILED
