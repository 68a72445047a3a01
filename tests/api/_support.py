"""Helpers shared by the API tests: venue set-up, the app behind an httpx client, the
contract's venue data, request bodies, tokens, the error-envelope check and snapshots of
what a refused request must not change."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import redis
from sqlalchemy import Engine, select, text

from amphi.block_spec import BlockSpec
from amphi.settings import Settings
from api.app import create_app
from api.auth import mint_token
from engine.blocks import load_block
from ledger.db import session_factory
from ledger.inventory import block_specs
from ledger.models import EventDate, Section, Venue
from ledger.venue_setup import setup_venue

BASE = "/api/tickets/amphitheater"
DAY = "2027-06-19"
EVENT_DATES = [date(2027, 6, 19), date(2027, 6, 20), date(2027, 6, 21)]
EVENT_DAYS = [d.isoformat() for d in EVENT_DATES]
LEDGER_TABLES = "seat_blocks, event_dates, sections, venues"

# The seed document's sections, in display order: name, price ($), capacity, type.
SEED_SECTIONS = [
    ("Orchestra Center", 125, 1500, "reserved"),
    ("Orchestra Left", 100, 800, "reserved"),
    ("Orchestra Right", 100, 800, "reserved"),
    ("Mezzanine Center", 85, 1200, "reserved"),
    ("Mezzanine Left", 75, 600, "reserved"),
    ("Mezzanine Right", 75, 600, "reserved"),
    ("Terrace", 60, 1500, "reserved"),
    ("Lawn", 45, 1500, "general_admission"),
]
SECTION_FIELDS = {
    "id", "name", "section_type", "capacity", "price", "available_seats", "held_seats",
    "sold_seats", "display_order", "map_color", "map_coordinates",
}


@dataclass(frozen=True)
class VenueFixture:
    id: str
    sections: dict[str, str]  # section name -> id
    specs: dict[str, BlockSpec]  # "<date>|<section slug>" -> what was loaded into Redis


def build_venue(engine: Engine, client: redis.Redis) -> VenueFixture:
    """Truncate the ledger, set the venue up for EVENT_DATES and load every block into
    `client` (which must have been flushed)."""
    with session_factory(engine)() as session:
        session.execute(text(f"TRUNCATE {LEDGER_TABLES} CASCADE"))
        setup_venue(session, EVENT_DATES)
        session.commit()
        specs = block_specs(session)
        venue_id = session.scalar(select(Venue.id))
        names = {s.name: str(s.id) for s in session.scalars(select(Section))}
    for spec in specs:
        assert load_block(client, spec) == "created"
    return VenueFixture(
        id=str(venue_id),
        sections=names,
        specs={f"{s.block.event_date.isoformat()}|{s.block.section}": s for s in specs},
    )


def set_accessible_seats(engine: Engine, client: redis.Redis, venue: VenueFixture,
                         name: str, seats: str) -> VenueFixture:
    """Give section `name` the accessible seats `seats` ("A1+A2, ...") in the ledger, as the
    admin saves them, and refresh its loaded blocks as the admin's change does. An app built
    afterwards sees them in its catalogue. Returns the fixture with the new specs."""
    with session_factory(engine).begin() as session:
        section = session.scalars(select(Section).where(Section.name == name)).one()
        section.accessible_seats = seats
        session.flush()
        specs = block_specs(session)
    for spec in specs:
        if spec.block.section == section.slug:
            assert load_block(client, spec) == "refreshed"
    return dataclasses.replace(venue, specs={
        f"{s.block.event_date.isoformat()}|{s.block.section}": s for s in specs})


def insert_event_date(engine: Engine, venue: VenueFixture, day: date) -> None:
    """An event date straight into the ledger (no blocks): an app built afterwards sees it."""
    with session_factory(engine).begin() as session:
        session.add(
            EventDate(venue_id=uuid.UUID(venue.id), event_date=day, name="Ledger-only date")
        )


@contextlib.asynccontextmanager
async def running_api(
    settings: Settings, client_addr: tuple[str, int] = ("127.0.0.1", 50000)
) -> AsyncIterator[httpx.AsyncClient]:
    """A new app with its lifespan running, behind an httpx client. Server errors come back
    as responses (500 in the envelope), never as exceptions in the test."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=client_addr)
        async with httpx.AsyncClient(transport=transport, base_url="http://amphi.test") as c:
            yield c


def hold_body(section_id: str, quantity: Any, day: str = DAY, **extra: Any) -> dict[str, Any]:
    return {"section_id": section_id, "event_date": day, "quantity": quantity, **extra}


def bearer(secret: str, user: str) -> dict[str, str]:
    token = mint_token(secret, user_id=user, email=f"{user}@example.com")
    return {"Authorization": f"Bearer {token}"}


def data(resp: httpx.Response, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["success"] is True, body
    return body["data"]


def assert_error(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The contract's error envelope with `status` (and `code`, when given)."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    body = resp.json()
    assert body["success"] is False, body
    error = body["error"]
    assert isinstance(error["code"], str) and error["code"], body
    assert isinstance(error["message"], str) and error["message"], body
    if code is not None:
        assert error["code"] == code, body
    return error


async def sections(client: httpx.AsyncClient, venue_id: str, day: str = DAY) -> dict[str, dict]:
    """The sections endpoint for `day`, by section name."""
    rows = data(await client.get(f"{BASE}/venues/{venue_id}/sections/",
                                 params={"event_date": day}))
    return {row["name"]: row for row in rows}


async def counters(client: httpx.AsyncClient, venue_id: str) -> dict[tuple[str, str], tuple]:
    """(available, held, sold) of every section on every event day."""
    out = {}
    for day in EVENT_DAYS:
        for name, row in (await sections(client, venue_id, day)).items():
            out[day, name] = (row["available_seats"], row["held_seats"], row["sold_seats"])
    return out
