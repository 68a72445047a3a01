"""A signed-in fan's tickets: amphitheatre tickets with seats, and every ticket they own."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from amphi import errors, logs, qr
from api import shapes
from api.auth import required_principal
from api.inputs import json_body, uuid_value
from api.state import amphi
from ledger.catalog import Catalog
from ledger.models import AmphitheaterTicket, Ticket
from ledger.tickets import amphitheater_tickets_of, tickets_of
from ledger.transfers import Giver
from services import transfers


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


async def transfer_ticket(request: Request) -> JSONResponse:
    """The owner gives an amphitheatre ticket and its festival pass to `email`."""
    principal = required_principal(request)
    ticket_id = uuid_value(request.path_params["ticket_id"], "ticket_id")
    body = await json_body(request)
    to_email = body.get("email")
    if (not isinstance(to_email, str) or not 1 <= len(to_email) <= 320 or "@" not in to_email
            or any(c.isspace() or c == "\x00" for c in to_email)):
        raise errors.ValidationFailed("'email' must be an email address.", field="email")
    state = amphi(request)
    logs.bind(ticket_id=str(ticket_id))
    done = await run_in_threadpool(
        transfers.transfer, state.sync_sessions, state.queue, state.signer, state.settings,
        ticket_id, giver=Giver(principal.user_id, principal.email), to_email=to_email,
        now=state.clock())
    return shapes.ok({"transfer_id": str(done.id), "ticket_id": str(done.ticket_id),
                      "festival_day_ticket_id": str(done.pass_id) if done.pass_id else None,
                      "event_date": done.event_date.isoformat(), "to_email": done.to_email,
                      "status": "TRANSFERRED",
                      "message": "Ticket transferred; the recipient gets new codes by email."})


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
    Route("/api/tickets/{ticket_id}/transfer/", transfer_ticket, methods=["POST"]),
]
