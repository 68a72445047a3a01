"""A signed-in fan's tickets: amphitheatre tickets with seats, and every ticket they own."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from amphi import qr
from api import shapes
from api.auth import required_principal
from api.state import amphi
from ledger.catalog import Catalog
from ledger.models import AmphitheaterTicket, Ticket
from ledger.tickets import amphitheater_tickets_of, tickets_of


def _event_name(catalog: Catalog, t: AmphitheaterTicket | Ticket) -> str:
    for day in catalog.event_dates:
        if day.event_date == t.event_date:
            return day.name
    return "Pacific Amphitheatre"


def _seat_location(t: AmphitheaterTicket) -> str:
    if t.row is None:
        return f"Section {t.section.name}, General Admission"
    return f"Section {t.section.name}, Row {t.row}, Seat {t.seat}"


def amphitheater_ticket_json(catalog: Catalog, t: AmphitheaterTicket) -> dict[str, Any]:
    return {
        "id": str(t.ticket.id),
        "ticket_code": t.ticket.code,
        "event_name": _event_name(catalog, t),
        "event_date": t.event_date.isoformat(),
        "section": t.section.name,
        "row": t.row,
        "seat": t.seat,
        "seat_location": _seat_location(t),
        "price_paid": shapes.dollars(t.price_paid_cents),
        "status": t.status.value.upper(),
        "qr_code": qr.data_uri(t.ticket.qr_payload),
        "includes_festival_access": t.includes_festival_access,
        "festival_day_ticket_code": t.festival_day_ticket.code if t.festival_day_ticket else None,
    }


def ticket_json(t: Ticket) -> dict[str, Any]:
    return {
        "id": str(t.id),
        "ticket_code": t.code,
        "ticket_type_name": t.ticket_type.name,
        "kind": t.kind.value,
        "event_date": t.event_date.isoformat(),
        "status": t.status.value.upper(),
        "is_comp": t.is_comp,
        "price": shapes.dollars(t.price_cents),
        "qr_code": qr.data_uri(t.qr_payload),
        "metadata": t.ticket_metadata,
    }


async def my_amphitheater_tickets(request: Request) -> JSONResponse:
    principal = required_principal(request)
    async with amphi(request).sessions() as session:
        tickets = await session.run_sync(amphitheater_tickets_of, principal.user_id,
                                         principal.email)
    catalog = amphi(request).catalog
    # QR images take a few milliseconds each: off the event loop.
    data = await run_in_threadpool(lambda: [amphitheater_ticket_json(catalog, t) for t in tickets])
    return shapes.ok(data)


async def my_tickets(request: Request) -> JSONResponse:
    principal = required_principal(request)
    async with amphi(request).sessions() as session:
        tickets = await session.run_sync(tickets_of, principal.user_id, principal.email)
    return shapes.ok(await run_in_threadpool(lambda: [ticket_json(t) for t in tickets]))


routes = [
    Route("/api/tickets/amphitheater/my-tickets/", my_amphitheater_tickets, methods=["GET"]),
    Route("/api/tickets/my/", my_tickets, methods=["GET"]),
]
