"""Where a ticket is written: amphitheatre tickets, their main tickets (what a gate scans)
and one complimentary festival day pass for each. Never commits."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, selectinload

from amphi.signing import Signer, ticket_claims
from ledger.models import (
    AmphitheaterTicket,
    Order,
    Section,
    Ticket,
    TicketKind,
    TicketType,
)
from ledger.venue_seed import VENUE_NAME

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at a gate


def new_code(prefix: str) -> str:
    return f"{prefix}-" + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))


@dataclass(frozen=True, slots=True)
class IssuedSeat:
    seat_index: int | None
    row: str | None
    seat: int | None


def amphitheater_type_name(event_date: date, section_name: str) -> str:
    return f"{VENUE_NAME} - {event_date.strftime('%B %-d, %Y')} - {section_name}"


def festival_type_name(event_date: date) -> str:
    return f"Festival Day Pass - {event_date.strftime('%A, %B %-d, %Y')} (Complimentary)"


def _ticket_type(session: Session, *, slug: str, name: str, kind: TicketKind,
                 event_date: date, price_cents: int, is_comp: bool) -> TicketType:
    # get-or-create that two concurrent finalisations cannot both create
    session.execute(
        insert(TicketType)
        .values(id=uuid.uuid4(), slug=slug, name=name, kind=kind, event_date=event_date,
                price_cents=price_cents, is_comp=is_comp, is_active=True)
        .on_conflict_do_nothing(index_elements=[TicketType.slug])
    )
    return session.scalars(select(TicketType).where(TicketType.slug == slug)).one()


def _signed(signer: Signer, ticket: Ticket) -> str:
    return signer.sign(ticket_claims(code=ticket.code, ticket_id=str(ticket.id),
                                     kind=ticket.kind.value,
                                     event_date=ticket.event_date.isoformat()))


def issue_tickets(session: Session, order: Order, section: Section,
                  seats: list[IssuedSeat], signer: Signer) -> list[AmphitheaterTicket]:
    """One amphitheatre ticket a seat, each with its comp festival day pass; every main
    ticket's QR payload is signed so gates can verify it offline."""
    amph_type = _ticket_type(
        session, slug=f"amph-{order.event_date.isoformat()}-{section.slug}",
        name=amphitheater_type_name(order.event_date, section.name),
        kind=TicketKind.AMPHITHEATER, event_date=order.event_date,
        price_cents=order.unit_price_cents, is_comp=False,
    )
    fest_type = _ticket_type(
        session, slug=f"festival-day-{order.event_date.isoformat()}-comp",
        name=festival_type_name(order.event_date), kind=TicketKind.FESTIVAL_DAY,
        event_date=order.event_date, price_cents=0, is_comp=True,
    )
    issued = []
    for line_no, place in enumerate(seats, start=1):
        metadata = {"amphitheater": True, "section": section.name, "section_id": str(section.id),
                    "row": place.row, "seat": place.seat,
                    "event_date": order.event_date.isoformat(), "order_number": order.order_number}
        main = Ticket(id=uuid.uuid4(), code=new_code("AMPH"), kind=TicketKind.AMPHITHEATER,
                      ticket_type=amph_type,
                      order_id=order.id, owner_user_id=order.user_id,
                      owner_email=order.buyer_email, event_date=order.event_date,
                      price_cents=order.unit_price_cents, ticket_metadata=metadata)
        main.qr_payload = _signed(signer, main)
        session.add(main)
        session.flush()
        festival = Ticket(id=uuid.uuid4(), code=new_code("FEST"), kind=TicketKind.FESTIVAL_DAY,
                          ticket_type=fest_type, order_id=order.id,
                          owner_user_id=order.user_id, owner_email=order.buyer_email,
                          event_date=order.event_date, price_cents=0, is_comp=True,
                          granted_by_id=main.id,
                          ticket_metadata={"granted_by_amphitheater": main.code,
                                           "event_date": order.event_date.isoformat()})
        festival.qr_payload = _signed(signer, festival)
        session.add(festival)
        session.flush()
        amph = AmphitheaterTicket(ticket_id=main.id, festival_day_ticket_id=festival.id,
                                  order_id=order.id, line_no=line_no,
                                  event_date=order.event_date, section_id=section.id,
                                  seat_index=place.seat_index, row=place.row, seat=place.seat,
                                  price_paid_cents=order.unit_price_cents)
        session.add(amph)
        issued.append(amph)
    session.flush()
    return issued


def _owned_by(user_id: str, email: str) -> ColumnElement[bool]:
    """A user's tickets: bought signed in, or as a guest with the same email."""
    clauses = [Ticket.owner_user_id == user_id]
    if email:
        guest = Ticket.owner_user_id.is_(None)
        clauses.append(guest & (func.lower(Ticket.owner_email) == email.lower()))
    return or_(*clauses)


def amphitheater_tickets_of(session: Session, user_id: str,
                            email: str) -> list[AmphitheaterTicket]:
    return list(session.scalars(
        select(AmphitheaterTicket)
        .join(AmphitheaterTicket.ticket)
        .where(_owned_by(user_id, email))
        .options(selectinload(AmphitheaterTicket.ticket),
                 selectinload(AmphitheaterTicket.festival_day_ticket),
                 selectinload(AmphitheaterTicket.section))
        .order_by(AmphitheaterTicket.event_date, AmphitheaterTicket.created_at,
                  AmphitheaterTicket.line_no)
    ))


def tickets_of(session: Session, user_id: str, email: str) -> list[Ticket]:
    return list(session.scalars(
        select(Ticket).where(_owned_by(user_id, email))
        .options(selectinload(Ticket.ticket_type))
        .order_by(Ticket.event_date, Ticket.created_at, Ticket.kind)
    ))


def tickets_of_order(session: Session, order_id: uuid.UUID) -> list[AmphitheaterTicket]:
    return list(session.scalars(
        select(AmphitheaterTicket)
        .where(AmphitheaterTicket.order_id == order_id)
        .options(selectinload(AmphitheaterTicket.ticket),
                 selectinload(AmphitheaterTicket.festival_day_ticket),
                 selectinload(AmphitheaterTicket.section))
        .order_by(AmphitheaterTicket.line_no)
    ))
