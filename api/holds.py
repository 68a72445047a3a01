"""Seat selection endpoints: check availability, create, show and release a hold."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from amphi import errors, logs, metrics
from amphi.geometry import Geometry, Seat, row_label
from amphi.keys import BlockKeys
from api import shapes
from api.auth import client_identity, holder, optional_principal
from api.inputs import (
    field_bool,
    field_date,
    field_int,
    field_seats,
    field_uuid,
    idempotency_key,
    json_body,
    uuid_value,
)
from api.state import amphi
from engine.hold_types import Accessible
from engine.holds import HoldEngine
from ledger.catalog import Catalog, SectionInfo


@dataclass(frozen=True, slots=True)
class _Selection:
    section: SectionInfo
    block: BlockKeys
    quantity: int
    allow_split: bool
    picks: list[int] | None  # the seats the fan picked (indices, ascending), or best available
    accessible: Accessible | None  # the wheelchair spaces asked for, or a general hold


async def _selection(request: Request) -> _Selection:
    body = await json_body(request)
    catalog: Catalog = amphi(request).catalog
    engine: HoldEngine = amphi(request).holds
    raw_id = body.get("section_id")
    known = catalog.sections_by_text.get(raw_id) if type(raw_id) is str else None
    section_id = None if known else field_uuid(body, "section_id")
    event_date = field_date(body, "event_date")
    seats = field_seats(body, "seats", most=engine.max_quantity)
    accessible = _accessible(body, engine.max_quantity)
    if seats is not None and accessible is not None:
        raise errors.ValidationFailed(
            "Ask for picked 'seats' or for 'accessible' wheelchair spaces, not both.",
            field="accessible")
    made = len(seats) if seats is not None else accessible.seats if accessible else None
    if made is None:
        quantity = field_int(body, "quantity", low=1, high=engine.max_quantity)
    else:
        quantity = made
        if (body.get("quantity") is not None and
                field_int(body, "quantity", low=1, high=engine.max_quantity) != quantity):
            raise errors.ValidationFailed(
                "'quantity' must be the number of seats that makes (or left out): "
                f"{quantity}.", field="quantity")
    allow_split = field_bool(body, "allow_split")
    section = known or catalog.section(section_id)  # type: ignore[arg-type]
    block = catalog.on_sale_block(section, event_date)
    picks = None if seats is None else _seat_indices(section, seats)
    if accessible is not None and not section.accessible:
        raise errors.ValidationFailed(
            f"{section.name} has no wheelchair spaces; see each section's "
            "'accessible_spaces'.", field="accessible")
    return _Selection(section, block, quantity, allow_split, picks, accessible)


def _accessible(body: dict[str, Any], most: int) -> Accessible | None:
    """`"accessible": n` wheelchair spaces, each with its companion seat unless
    `"companions": false`; None when the body asks for none."""
    if body.get("accessible") is None:
        if "companions" in body:
            raise errors.ValidationFailed("'companions' goes with 'accessible'.",
                                          field="companions")
        return None
    companions = field_bool(body, "companions", default=True)
    spaces = field_int(body, "accessible", low=1, high=most // 2 if companions else most)
    return Accessible(spaces, companions)


def _seat_indices(section: SectionInfo, seats: list[tuple[str, int]]) -> list[int]:
    if not section.reserved:
        raise errors.ValidationFailed(
            f"{section.name} is general admission: ask for a quantity, not seats.",
            field="seats")
    geometry = Geometry(section.rows or 1, section.seats_per_row or 1)
    try:
        return sorted(geometry.index(Seat(row, seat)) for row, seat in seats)
    except ValueError:
        raise errors.ValidationFailed(
            f"Every seat must be one of {section.name}'s: rows "
            f"{row_label(0)}-{row_label(geometry.rows - 1)}, seats 1-{geometry.seats_per_row}.",
            field="seats") from None


def _unavailable(section: SectionInfo, refused: errors.SeatsUnavailable) -> errors.SeatsUnavailable:
    """The refusal naming the seats as the fan picked them."""
    indices = cast(list[int], refused.details["seat_indices"])
    return errors.SeatsUnavailable(unavailable=shapes.seats_json(section, indices))


async def check_availability(request: Request) -> JSONResponse:
    chosen = await _selection(request)
    section, quantity = chosen.section, chosen.quantity
    engine: HoldEngine = amphi(request).holds
    try:
        offer = await engine.check(chosen.block, quantity, allow_split=chosen.allow_split,
                                   picks=chosen.picks, accessible=chosen.accessible)
    except (errors.SoldOut, errors.NoAdjacentSeats, errors.SeatsUnavailable,
            errors.AccessibleUnavailable) as refused:
        price = int(refused.details["price_cents"])  # type: ignore[call-overload]
        body = shapes.check_json(section, quantity, None, price, refused.code)
        if isinstance(refused, errors.SeatsUnavailable):
            body["unavailable_seats"] = _unavailable(section, refused).details["unavailable"]
        else:
            body["available_seats"] = refused.details["available"]
        return shapes.ok(body)
    return shapes.ok(shapes.check_json(section, quantity, offer, offer.price_cents))


async def create_hold(request: Request) -> JSONResponse:
    principal = optional_principal(request)
    key = idempotency_key(request)
    chosen = await _selection(request)
    section, block = chosen.section, chosen.block
    services = amphi(request)
    engine: HoldEngine = services.holds
    client = client_identity(request, principal)
    admission = await services.waiting_room.admit_hold(
        block.event_date, client, request.headers.get("x-admission-token"))
    started = time.perf_counter()
    try:
        hold = await engine.create(
            block,
            chosen.quantity,
            owner=principal.user_id if principal else "",
            client=client,
            idempotency_key=key,
            allow_split=chosen.allow_split,
            picks=chosen.picks,
            accessible=chosen.accessible,
            holder=holder(request, principal),
        )
    except errors.DomainError as refused:
        metrics.labelled(metrics.HOLDS_REFUSED, refused.code).inc()
        if isinstance(refused, errors.SeatsUnavailable):
            raise _unavailable(section, refused) from None
        raise
    metrics.HOLD_SECONDS.observe(time.perf_counter() - started)
    if admission is not None:
        await services.waiting_room.hold_made(admission, hold.hold_id)
    metrics.labelled(metrics.HOLDS_CREATED, section.section_type).inc()
    logs.conclude("hold created", hold_id=hold.hold_id, section=section.slug,
                  event_date=str(block.event_date), quantity=chosen.quantity, seats=hold.seats,
                  picked=chosen.picks is not None,
                  accessible=chosen.accessible.spaces if chosen.accessible else 0)
    return shapes.ok(shapes.hold_json(section, hold), status=201)


async def my_holds(request: Request) -> JSONResponse:
    """The caller's active holds (a fan who reloads the page finds theirs again)."""
    principal = optional_principal(request)
    who = holder(request, principal)
    if who is None:
        raise errors.Unauthorized(
            "Sign in, or send the X-Guest-Id your app sent with its holds.")
    services = amphi(request)
    holds, now_ms = await services.holds.holds_of(who)
    owner = principal.user_id if principal else ""
    catalog = services.catalog
    return shapes.ok([shapes.hold_json(catalog.section_by_slug(h.section), h, now_ms)
                      for h in holds if h.owner == owner])


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
    Route("/api/tickets/amphitheater/holds/", my_holds, methods=["GET"]),
    Route("/api/tickets/amphitheater/holds/{hold_id}/", show_hold, methods=["GET"]),
    Route("/api/tickets/amphitheater/holds/{hold_id}/release/", release_hold, methods=["POST"]),
]
