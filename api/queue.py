"""The waiting room's endpoints: a fan joins the room of a date and polls their place until
admitted (services/waiting_room.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from amphi import errors
from api import shapes
from api.auth import client_identity, optional_principal
from api.inputs import field_date, json_body
from api.state import amphi


async def join(request: Request) -> JSONResponse:
    """One place per identity (a signed-in user; a guest's address otherwise): joining
    again returns the same place."""
    principal = optional_principal(request)
    body = await json_body(request)
    day = field_date(body, "event_date")
    status = await amphi(request).waiting_room.join(day, client_identity(request, principal))
    return shapes.ok(status.as_json())


async def status(request: Request) -> JSONResponse:
    ticket = request.query_params.get("queue_ticket", "")
    if not ticket:
        raise errors.InvalidRequest("'queue_ticket' is required.", field="queue_ticket")
    return shapes.ok((await amphi(request).waiting_room.status(ticket)).as_json())


routes = [
    Route("/api/queue/join/", join, methods=["POST"]),
    Route("/api/queue/status/", status, methods=["GET"]),
]
