"""Helpers of the gate-scanning tests: a controllable venue clock, the app behind an httpx
client with that clock, staff and fan tokens, the tickets bought for the session, what the
scan log holds, and an offline gate device's own verifier of signed QR payloads."""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, text

from amphi.settings import Settings
from api.app import create_app
from api.auth import mint_token

LA = ZoneInfo("America/Los_Angeles")
UTC = ZoneInfo("UTC")
SCAN = "/api/tickets/scan/"
BUNDLE = "/api/tickets/scan/bundle/"
SYNC = "/api/tickets/scan/sync/"
JUNE_19, JUNE_20, JUNE_21 = date(2027, 6, 19), date(2027, 6, 20), date(2027, 6, 21)
TEST_SIGNING_KEY = base64.b64encode(bytes(range(32))).decode()  # a test-only Ed25519 seed
SCAN_COLUMNS = ("ticket_id, code, gate, device_id, scanned_at, venue_date, admitted, result, "
                "reason, festival_access_granted, source")


def la(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A venue-local (Los Angeles) wall-clock time."""
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=LA)


class Clock:
    """The app's clock: what "now" is at the gates. Tests move it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, now: datetime) -> None:
        assert now.tzinfo is not None
        self.now = now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@contextlib.asynccontextmanager
async def scan_api(settings: Settings, clock: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A new app (its lifespan running) whose gates read `clock`, behind an httpx client."""
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://amphi.test",
                                     timeout=30) as client:
            yield client


def staff(settings: Settings, user: str = "gate-staff-1") -> dict[str, str]:
    token = mint_token(settings.jwt_secret, user_id=user, email=f"{user}@example.com",
                       is_staff=True)
    return {"Authorization": f"Bearer {token}"}


def fan(settings: Settings, user: str = "fan-1") -> dict[str, str]:
    token = mint_token(settings.jwt_secret, user_id=user, email=f"{user}@example.com")
    return {"Authorization": f"Bearer {token}"}


def ok_data(resp: httpx.Response, status: int = 200) -> Any:
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert body["success"] is True, body
    return body["data"]


def refused(resp: httpx.Response, status: int) -> dict[str, Any]:
    """The error envelope with `status`."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert body["success"] is False, body
    assert body["error"]["code"] and body["error"]["message"], body
    return body["error"]


# -- the tickets bought for the session --------------------------------------------------------
@dataclass(frozen=True)
class TicketRow:
    id: str
    code: str
    kind: str  # amphitheater | festival_day
    event_date: date
    qr_payload: str
    section: str
    row: str | None
    seat: int | None

    @property
    def uuid(self) -> uuid.UUID:
        return uuid.UUID(self.id)


@dataclass(frozen=True)
class Sold:
    tickets: list[TicketRow]

    def of(self, kind: str, day: date) -> list[TicketRow]:
        return [t for t in self.tickets if t.kind == kind and t.event_date == day]

    def amph(self, day: date = JUNE_19, i: int = 0) -> TicketRow:
        return self.of("amphitheater", day)[i]

    def fest(self, day: date = JUNE_19, i: int = 0) -> TicketRow:
        return self.of("festival_day", day)[i]


def read_tickets(engine: Engine) -> list[TicketRow]:
    with engine.connect() as conn:
        found = conn.execute(text("""
            SELECT t.id, t.code, t.kind, t.event_date, t.qr_payload, s.name AS section,
                   a.row, a.seat
            FROM tickets t
            JOIN amphitheater_tickets a ON a.ticket_id = t.id OR a.festival_day_ticket_id = t.id
            JOIN sections s ON s.id = a.section_id
            ORDER BY t.event_date, t.kind, a.line_no""")).mappings().all()
    return [TicketRow(str(r["id"]), r["code"], r["kind"], r["event_date"], r["qr_payload"],
                      r["section"], r["row"], r["seat"]) for r in found]


# -- the ledger, by SQL -----------------------------------------------------------------------
def scan_rows(engine: Engine, where: str = "TRUE", **params: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            text(f"SELECT {SCAN_COLUMNS} FROM scans WHERE {where} ORDER BY scanned_at, created_at"),
            params).mappings()]


def scan_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM scans")).scalar_one()


def set_status(engine: Engine, ticket_id: str, status: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE tickets SET status = :s WHERE id = :id"),
                     {"s": status, "id": ticket_id})


# -- an offline gate device: only the published public key, its own code ---------------------
def device_verify(payload: str, public_key_b64: str) -> dict[str, Any] | None:
    """What a gate device holding only the bundle's public key does: the claims of a
    genuine payload, None for anything else. Written from the bundle's documented format,
    independently of amphi.signing."""
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64, validate=True))
    parts = payload.split(".")
    if len(parts) != 3 or parts[0] != "AMPHI1":
        return None

    def unb64url(s: str) -> bytes:
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

    try:
        key.verify(unb64url(parts[2]), f"{parts[0]}.{parts[1]}".encode())
    except (InvalidSignature, ValueError):
        return None
    return json.loads(unb64url(parts[1]))
