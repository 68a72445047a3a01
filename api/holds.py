"""Seat selection endpoints: check availability, create, show and release a hold."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from amphi import errors, logs, metrics
from amphi.keys import BlockKeys
from api import shapes
from api.auth import client_identity, optional_principal
from api.inputs import (
    field_bool,
    field_date,
    field_int,
    field_uuid,
    idempotency_key,
    json_body,
    uuid_value,
)
from api.state import amphi
from engine.holds import HoldEngine
from ledger.catalog import Catalog, SectionInfo


async def _selection(request: Request) -> tuple[SectionInfo, BlockKeys, int, bool]:
    body = await json_body(request)
    catalog: Catalog = amphi(request).catalog
    engine: HoldEngine = amphi(request).holds
    raw_id = body.get("section_id")
    known = catalog.sections_by_text.get(raw_id) if type(raw_id) is str else None
    section_id = None if known else field_uuid(body, "section_id")
    event_date = field_date(body, "event_date")
    quantity = field_int(body, "quantity", low=1, high=engine.max_quantity)
    allow_split = field_bool(body, "allow_split")
    section = known or catalog.section(section_id)  # type: ignore[arg-type]
    block = catalog.on_sale_block(section, event_date)
    return section, block, quantity, allow_split


async def check_availability(request: Request) -> JSONResponse:
    section, block, quantity, allow_split = await _selection(request)
    engine: HoldEngine = amphi(request).holds
    try:
        offer = await engine.check(block, quantity, allow_split=allow_split)
    except (errors.SoldOut, errors.NoAdjacentSeats) as refused:
        price = int(refused.details["price_cents"])  # type: ignore[call-overload]
        body = shapes.check_json(section, quantity, None, price, refused.code)
        body["available_seats"] = refused.details["available"]
        return shapes.ok(body)
    return shapes.ok(shapes.check_json(section, quantity, offer, offer.price_cents))


async def create_hold(request: Request) -> JSONResponse:
    principal = optional_principal(request)
    key = idempotency_key(request)
    section, block, quantity, allow_split = await _selection(request)
    services = amphi(request)
    engine: HoldEngine = services.holds
    client = client_identity(request, principal)
    admission = await services.waiting_room.admit_hold(
        block.event_date, client, request.headers.get("x-admission-token"))
    started = time.perf_counter()
    try:
        hold = await engine.create(
            block,
            quantity,
            owner=principal.user_id if principal else "",
            client=client,
            idempotency_key=key,
            allow_split=allow_split,
        )
    except errors.DomainError as refused:
        metrics.labelled(metrics.HOLDS_REFUSED, refused.code).inc()
        raise
    metrics.HOLD_SECONDS.observe(time.perf_counter() - started)
    if admission is not None:
        await services.waiting_room.hold_made(admission, hold.hold_id)
    metrics.labelled(metrics.HOLDS_CREATED, section.section_type).inc()
    logs.conclude("hold created", hold_id=hold.hold_id, section=section.slug,
                  event_date=str(block.event_date), quantity=quantity, seats=hold.seats)
    return shapes.ok(shapes.hold_json(section, hold), status=201)


def _hold_id(request: Request) -> str:
    return str(uuid_value(request.path_params["hold_id"], "hold_id"))


async def show_hold(request: Request) -> JSONResponse:
    engine: HoldEngine = amphi(request).holds
    hold, now_ms = await engine.get_with_time(_hold_id(request))
    section = amphi(request).catalog.section_by_slug(hold.section)
    return shapes.ok(shapes.hold_json(section, hold, now_ms))


async def release_hold(request: Request) -> JSONResponse:
    principal = optional_principal(request)
    engine: HoldEngine = amphi(request).holds
    hold_id = _hold_id(request)
    logs.bind(hold_id=hold_id)
    hold = await engine.release(hold_id, requester=principal.user_id if principal else "")
    metrics.HOLDS_RELEASED.inc()
    logs.conclude("hold released", quantity=hold.quantity)
    section = amphi(request).catalog.section_by_slug(hold.section)
    return shapes.ok(shapes.hold_json(section, hold, await engine.now_ms()))


routes = [
    Route("/api/tickets/amphitheater/check-availability/", check_availability, methods=["POST"]),
    Route("/api/tickets/amphitheater/holds/create/", create_hold, methods=["POST"]),
    Route("/api/tickets/amphitheater/holds/{hold_id}/", show_hold, methods=["GET"]),
    Route("/api/tickets/amphitheater/holds/{hold_id}/release/", release_hold, methods=["POST"]),
]
