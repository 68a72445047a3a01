"""Helpers of the admin tests: logging in, the admin's pages, a sale in the ledger and a
snapshot of the ledger rows a refused request must not change."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, select

from amphi.access import Gate
from amphi.geometry import SeatLine
from amphi.signing import Signer
from ledger.db import session_factory
from ledger.models import (
    AmphitheaterTicket,
    EventDate,
    Order,
    OrderStatus,
    Scan,
    SeatBlock,
    Section,
    StripeEvent,
    Ticket,
    TicketTransfer,
    Venue,
)
from ledger.orders import (
    Buyer,
    create_order,
    next_order_number,
    record_stripe_event,
)
from ledger.scans import scan_ticket
from ledger.tickets import issue_tickets, tickets_of_orders
from ledger.transfers import Giver, transfer_ticket
from tests.api._support import EVENT_DATES

USERNAME = "boxoffice"
PASSWORD = "a-long-box-office-password"
ORIGIN = {"Origin": "http://amphi.test"}  # the test client's own site

# identity -> what its list page must show (with a venue and one sale in the ledger)
LIST_PAGES = {
    "venue": ["Pacific Amphitheatre"],
    "section": ["Orchestra Center", "$125.00", "Lawn", "$45.00"],
    "event-date": ["2027-06-19", "2027-06-21"],
    "seat-block": ["Orchestra Center", "2027-06-20", "$125.00", "Price in Redis"],
    "order": ["fan@example.com", "$250.00"],
    "amphitheater-ticket": ["AMPH-", "FEST-", "issued"],
    "ticket": ["AMPH-", "FEST-", "festival_day"],
    "stripe-event": ["evt_admin_test_1", "payment_intent.succeeded"],
    "scan": ["gate-7", "amphitheater"],
    "ticket-transfer": ["fan@example.com", "friend@example.com", "2027-06-19"],
}


def table_body(resp: httpx.Response) -> str:
    """The rows of a page's table (not its filters or menu)."""
    assert resp.status_code == 200, resp.text
    return resp.text.split("<tbody>", 1)[1].split("</tbody>", 1)[0]


def cells(resp: httpx.Response) -> list[str]:
    """The text of each table cell, in order."""
    body = table_body(resp).replace("</td>", "<td>")
    return [" ".join(c.split()) for c in body.split("<td>")]


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/admin/login", data={"username": username, "password": password},
                             headers=ORIGIN)


@dataclass(frozen=True)
class Sale:
    order_number: str
    ticket_codes: list[str]
    pass_codes: list[str]


def record_sale(engine: Engine) -> Sale:
    """Two Orchestra Center seats sold on the first event date the way finalisation
    records them (order, tickets with their comp festival passes, the Stripe event), the
    second given to a friend, and one scan of the first ticket at the amphitheatre gate."""
    day = EVENT_DATES[0]
    with session_factory(engine).begin() as session:
        section = session.scalars(select(Section).where(Section.name == "Orchestra Center")).one()
        seats = [SeatLine(0, "A", 1), SeatLine(1, "A", 2)]
        order = create_order(
            session, order_id=uuid.uuid4(), order_number=next_order_number(session),
            hold_id=uuid.uuid4(),
            buyer=Buyer("fan@example.com", "Ada", "Lovelace"), section_id=section.id,
            event_date=day, unit_price_cents=12500,
            lines=[SeatLine(s.seat_index, s.row, s.seat) for s in seats],
        )
        order.status = OrderStatus.COMPLETED
        signer = Signer(Ed25519PrivateKey.generate())
        issue_tickets(session, [(order, seats)], signer)
        issued = tickets_of_orders(session, [order.id])[order.id]
        transfer_ticket(session, issued[1].ticket.id, giver=Giver("", "fan@example.com"),
                        to_email="friend@example.com", signer=signer,
                        now=datetime(2027, 6, 1, tzinfo=UTC), close_hours=24,
                        tz="America/Los_Angeles")
        record_stripe_event(session, event_id="evt_admin_test_1",
                            event_type="payment_intent.succeeded",
                            payment_intent_id="pi_admin_test_1", order_id=order.id)
        codes = [a.ticket.code for a in issued]
        passes = [a.festival_day_ticket.code for a in issued if a.festival_day_ticket]
        scan_ticket(session, presented=codes[0], code=codes[0], ticket_id=None,
                    gate=Gate.AMPHITHEATER, device_id="gate-7",
                    at=datetime(2027, 6, 20, 2, 0, tzinfo=UTC), tz="America/Los_Angeles",
                    reentry=False)
        return Sale(order.order_number, codes, passes)


def ledger_snapshot(engine: Engine) -> dict[str, Any]:
    """The admin-editable ledger rows, to prove a refused request changed nothing."""
    with session_factory(engine)() as session:
        return {
            "venues": [(v.name, v.address, v.capacity, v.is_active)
                       for v in session.scalars(select(Venue).order_by(Venue.slug))],
            "sections": [(s.slug, s.name, s.price_cents, s.is_active, s.display_order)
                         for s in session.scalars(select(Section).order_by(Section.slug))],
            "dates": [(d.event_date, d.name, d.is_active)
                      for d in session.scalars(select(EventDate).order_by(EventDate.event_date))],
            "blocks": [(b.section_id, b.event_date, b.price_cents_override, b.is_active)
                       for b in session.scalars(
                           select(SeatBlock).order_by(SeatBlock.event_date, SeatBlock.section_id))],
            "orders": [(o.order_number, o.buyer_email, o.status)
                       for o in session.scalars(select(Order).order_by(Order.order_number))],
            "tickets": sorted(session.scalars(select(Ticket.id)).all()),
            "seats": sorted(session.scalars(select(AmphitheaterTicket.id)).all()),
            "stripe_events": sorted(session.scalars(select(StripeEvent.id)).all()),
            "scans": sorted(session.scalars(select(Scan.id)).all()),
            "transfers": sorted(session.scalars(select(TicketTransfer.id)).all()),
        }


def block_id(engine: Engine, section_name: str, day: str) -> str:
    with session_factory(engine)() as session:
        return str(session.scalars(
            select(SeatBlock.id).join(SeatBlock.section)
            .where(Section.name == section_name, SeatBlock.event_date == date.fromisoformat(day))
        ).one())
