"""Venue, section-availability and event-date endpoints (read side)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import cast

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from amphi import errors
from api import http_cache, shapes
from api.inputs import date_value, uuid_value
from api.state import amphi, amphi_of
from ledger.catalog import Catalog


async def list_venues(request: Request) -> JSONResponse:
    catalog: Catalog = amphi(request).catalog
    return shapes.ok([shapes.venue_json(v) for v in catalog.venues.values()])


async def list_event_dates(request: Request) -> JSONResponse:
    catalog: Catalog = amphi(request).catalog
    return shapes.ok([shapes.event_date_json(d) for d in catalog.dates_on_sale()])


def _event_date(request: Request, catalog: Catalog, venue_id: uuid.UUID) -> date:
    """`?event_date=`, or the venue's next date on sale."""
    raw_date = request.query_params.get("event_date")
    if raw_date:
        return date_value(raw_date, "event_date")
    upcoming = catalog.dates_on_sale(venue_id)
    if not upcoming:
        raise errors.EventDateNotFound("No event date at this venue is on sale.")
    return upcoming[0].event_date


async def venue_sections(request: Request) -> Response:
    catalog: Catalog = amphi(request).catalog
    venue = catalog.venue(uuid_value(request.path_params["venue_id"], "venue_id"))
    event_date = _event_date(request, catalog, venue.id)
    rendered = await amphi(request).sections_cache(venue.id, event_date)
    return http_cache.respond(request, rendered, amphi(request).settings.sections_cache_seconds)


async def section_seats(request: Request) -> Response:
    """A reserved section's seat map on a date, for fans who pick their seats."""
    catalog: Catalog = amphi(request).catalog
    venue = catalog.venue(uuid_value(request.path_params["venue_id"], "venue_id"))
    section = catalog.section(uuid_value(request.path_params["section_id"], "section_id"))
    if section.venue_id != venue.id:
        raise errors.SectionNotFound()
    if not section.reserved:
        raise errors.NotFound(f"{section.name} is general admission: it has no seat map.")
    event_date = _event_date(request, catalog, venue.id)
    catalog.on_sale_block(section, event_date)  # that date is on sale, or the fan's 404/410
    rendered = await amphi(request).seat_map_cache(section.id, event_date)
    return http_cache.respond(request, rendered, amphi(request).settings.sections_cache_seconds)


def sections_loader(app: Starlette, ttl_seconds: int) -> http_cache.Loader:
    """The sections of a venue on a date with live counters, rendered once per cache TTL
    in this process (SECTIONS_CACHE_SECONDS) however many fans poll."""

    async def render(venue_id: uuid.UUID, event_date: date) -> http_cache.Rendered:
        services = amphi_of(app)
        catalog, engine = services.catalog, services.holds
        sections = catalog.sections_of(venue_id)
        blocks = [catalog.on_sale_block(s, event_date) for s in sections]
        counts = await engine.availability(blocks)
        if any(c is None for c in counts):
            raise errors.InventoryUnavailable()
        rows = [shapes.section_json(s, c) for s, c in zip(sections, counts, strict=True)]
        # Response.body may be a memoryview; FastJSONResponse's is orjson's bytes
        return http_cache.Rendered.of(cast(bytes, shapes.ok(rows).body))

    return http_cache.shared(render, ttl_seconds)


def seat_map_loader(app: Starlette, ttl_seconds: int) -> http_cache.Loader:
    """A section's seat map on a date, rendered once per cache TTL in this process, as the
    sections are (a map changes with every hold: it is as fresh as the sections' counts)."""

    async def render(section_id: uuid.UUID, event_date: date) -> http_cache.Rendered:
        services = amphi_of(app)
        section = services.catalog.section(section_id)
        found = await services.holds.seat_map(services.catalog.on_sale_block(section, event_date))
        if found is None:
            raise errors.InventoryUnavailable()
        body = shapes.ok(shapes.seat_map_json(section, event_date, found)).body
        return http_cache.Rendered.of(cast(bytes, body))

    return http_cache.shared(render, ttl_seconds)


routes = [
    Route("/api/tickets/amphitheater/venues/", list_venues, methods=["GET"]),
    Route("/api/tickets/amphitheater/venues/{venue_id}/sections/", venue_sections,
          methods=["GET"]),
    Route("/api/tickets/amphitheater/venues/{venue_id}/sections/{section_id}/seats/",
          section_seats, methods=["GET"]),
    Route("/api/tickets/amphitheater/event-dates/", list_event_dates, methods=["GET"]),
]
