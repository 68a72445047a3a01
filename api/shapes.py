"""The JSON shapes of the contract (seed document): money in dollars, seats as {row, seat}."""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, date, datetime
from typing import Any

import orjson
from starlette.responses import JSONResponse

from amphi.geometry import COMPANION, FREE, HELD, SOLD, WHEELCHAIR, Geometry, row_label
from engine.hold_types import BlockCounts, Hold, Offer, SeatMap
from ledger.catalog import EventDateInfo, SectionInfo, VenueInfo


class FastJSONResponse(JSONResponse):
    """JSON rendered by orjson: a tenth of the stdlib's time, on every hot-path answer."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def ok(data: object, status: int = 200) -> JSONResponse:
    """The contract's success envelope."""
    return FastJSONResponse({"success": True, "data": data}, status_code=status)


def dollars(cents: int) -> float:
    return round(cents / 100, 2)


def iso_ms(ms: int) -> str:
    return _iso_second(ms // 1000)


@functools.lru_cache(maxsize=64)  # the holds of one second all expire in the same second
def _iso_second(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).isoformat().replace("+00:00", "Z")


@functools.lru_cache(maxsize=4096)
def id_text(value: uuid.UUID) -> str:
    return str(value)


def seats_json(section: SectionInfo, indices: list[int]) -> list[dict[str, Any]]:
    if not section.reserved or not indices:
        return []
    rows, per_row = section.rows or 1, section.seats_per_row or 1
    return [_seat_json(rows, per_row, i) for i in indices]


# Every seat's JSON made once (8,500 in the venue), shared by the answers that name it:
# nothing changes a seat's JSON once made.
@functools.lru_cache(maxsize=65_536)
def _seat_json(rows: int, seats_per_row: int, index: int) -> dict[str, Any]:
    return Geometry(rows, seats_per_row).seat(index).as_json()


SEAT_STATES = {FREE: "free", HELD: "held", SOLD: "sold", WHEELCHAIR: "wheelchair",
               COMPANION: "companion"}


def seat_map_json(section: SectionInfo, event_date: date, seat_map: SeatMap) -> dict[str, Any]:
    """A reserved block's seats, compact: per row its label and a string of one character
    a seat (seat numbers 1..seats_per_row from the left), read with `legend`."""
    seats, per_row = seat_map.seats, seat_map.seats_per_row
    counts = {name: seats.count(state) for state, name in SEAT_STATES.items()}
    return {
        "section_id": str(section.id),
        "section_name": section.name,
        "event_date": event_date.isoformat(),
        "on_sale": seat_map.active,
        "seats_per_row": per_row,
        **counts,
        "legend": SEAT_STATES,
        "rows": [{"row": row_label(r), "seats": seats[r * per_row:(r + 1) * per_row]}
                 for r in range(len(seats) // per_row)],
    }


def venue_json(venue: VenueInfo) -> dict[str, Any]:
    return {"id": str(venue.id), "name": venue.name, "slug": venue.slug,
            "address": venue.address, "capacity": venue.capacity, "timezone": venue.timezone}


def event_date_json(day: EventDateInfo) -> dict[str, Any]:
    return {"date": day.event_date.isoformat(), "day_name": day.event_date.strftime("%A"),
            "display": day.event_date.strftime("%B %-d, %Y"), "event_name": day.name,
            "venue_id": str(day.venue_id)}


def section_json(section: SectionInfo, counts: BlockCounts | None) -> dict[str, Any]:
    price = counts.price_cents if counts else section.price_cents
    return {
        "id": str(section.id),
        "name": section.name,
        "slug": section.slug,
        "section_type": section.section_type,
        "capacity": section.capacity,
        "price": dollars(price),
        "available_seats": counts.available if counts and counts.active else 0,
        "held_seats": counts.held if counts else 0,
        "sold_seats": counts.sold if counts else 0,
        "is_on_sale": bool(counts and counts.active),
        "accessible_spaces": len(section.accessible),
        "accessible_available": counts.wheelchair_free if counts and counts.active else 0,
        "display_order": section.display_order,
        "map_color": section.map_color,
        "map_coordinates": section.map_coordinates,
    }


def check_json(section: SectionInfo, quantity: int, offer: Offer | None, price_cents: int,
               reason: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "available": offer is not None,
        "section_id": str(section.id),
        "section_name": section.name,
        "quantity": quantity,
        "price_per_ticket": dollars(price_cents),
        "total_price": dollars(price_cents * quantity),
    }
    if reason:
        body["reason"] = reason
    return body


def hold_json(section: SectionInfo, hold: Hold, now_ms: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hold_id": hold.hold_id,
        "status": hold.status,
        "section_id": id_text(section.id),
        "section_name": section.name,
        "event_date": hold.event_date.isoformat(),
        "quantity": hold.quantity,
        "seats": seats_json(section, hold.seats),
        "price_per_ticket": dollars(hold.price_cents),
        "total_price": dollars(hold.total_cents),
        "expires_at": iso_ms(hold.expires_ms),
    }
    if hold.accessible:
        body["accessible"] = hold.accessible
    if now_ms is not None:
        active = hold.status == "active" and hold.expires_ms > now_ms
        if hold.status == "active" and not active:
            body["status"] = "expired"
        body["time_left_seconds"] = max(0, (hold.expires_ms - now_ms) // 1000) if active else 0
    return body
