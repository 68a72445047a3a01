"""Gate scanning for staff: online scans, the offline gate bundle, and offline batch sync."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from amphi import errors, logs, signing
from amphi.access import Decision, Gate
from amphi.venue_time import venue_today
from api import shapes
from api.auth import Principal, required_principal
from api.inputs import date_value, field_text, json_body
from api.state import amphi
from ledger.scans import ScanOutcome, bundle_tickets, scan_ticket
from ledger.transfers import revoked_codes

log = logging.getLogger(__name__)

SYNC_MAX_SCANS = 1000
SYNC_MAX_BYTES = 1_048_576  # 1,000 signed payloads with their times fit easily
FORGED = Decision(False, "invalid_signature",
                  "This QR code is not a genuine ticket (altered or forged). Do not admit.")


def _staff(request: Request) -> Principal:
    principal = required_principal(request)
    if not principal.is_staff:
        raise errors.Forbidden("Only gate staff may scan tickets.")
    return principal


def _gate(raw: Any) -> Gate:
    try:
        return Gate(raw)
    except ValueError:
        raise errors.ValidationFailed("'gate' must be 'amphitheater' or 'festival'.",
                                      field="gate") from None


def _read_code(request: Request, presented: str) -> tuple[str | None, uuid.UUID | None,
                                                           Decision | None]:
    """(code, ticket id, refusal): a signed payload is verified before any lookup."""
    if not signing.is_signed(presented):
        return presented.upper(), None, None
    try:
        claims = signing.verify(presented, amphi(request).signer.public_key)
        return claims["c"], uuid.UUID(claims["t"]), None
    except (signing.BadSignature, KeyError, ValueError):
        return None, None, FORGED


def outcome_json(outcome: ScanOutcome) -> dict[str, Any]:
    d, t, seat = outcome.decision, outcome.ticket, outcome.seat
    ticket = None
    if t is not None:
        ticket = {
            "id": str(t.id), "code": t.code, "kind": t.kind.value,
            "ticket_type_name": t.ticket_type.name, "event_date": t.event_date.isoformat(),
            "status": t.status.value.upper(), "is_comp": t.is_comp,
            "section": seat.section.name if seat else None,
            "row": seat.row if seat else None, "seat": seat.seat if seat else None,
        }
    return {"can_enter": d.can_enter, "festival_access_granted": d.festival_access_granted,
            "result": d.code, "reason": d.reason, "ticket": ticket,
            "scanned_at": outcome.scan.scanned_at.isoformat()}


async def scan(request: Request) -> JSONResponse:
    _staff(request)
    body = await json_body(request)
    presented = field_text(body, "code", required=True, limit=512)
    gate = _gate(body.get("gate"))
    device_id = field_text(body, "device_id", required=False, limit=128)
    code, ticket_id, refused = _read_code(request, presented)
    settings, state = amphi(request).settings, amphi(request)

    def run() -> tuple[dict[str, Any], str | None]:
        with state.sync_sessions.begin() as session:
            outcome = scan_ticket(
                session, presented=presented, code=code, ticket_id=ticket_id, gate=gate,
                device_id=device_id, at=state.clock(), tz=settings.venue_timezone,
                reentry=gate.value in settings.scan_reentry_gates, refused=refused)
            order_id = str(outcome.ticket.order_id) if outcome.ticket else None
            return outcome_json(outcome), order_id

    result, order_id = await run_in_threadpool(run)
    # order_id: an operator follows one order from its hold to its tickets to the gate.
    scanned = result["ticket"] or {}
    logs.bind(ticket_id=scanned.get("id"), ticket_code=scanned.get("code"), order_id=order_id)
    log.info("scan", extra={"gate": gate.value, "device_id": device_id,
                            "result": result["result"]})
    return shapes.ok(result)


async def bundle(request: Request) -> JSONResponse:
    _staff(request)
    state, settings = amphi(request), amphi(request).settings
    raw_date = request.query_params.get("event_date")
    day = (date_value(raw_date, "event_date") if raw_date
           else venue_today(settings.venue_timezone, state.clock()))
    gate = _gate(request.query_params.get("gate"))

    def run() -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        with state.sync_sessions() as session:
            return ([{"id": str(t.id), "code": t.code, "kind": t.kind.value,
                      "status": t.status.value} for t in bundle_tickets(session, day, gate)],
                    revoked_codes(session, [day]))

    tickets, revoked = await run_in_threadpool(run)

    return shapes.ok({
        "algorithm": "Ed25519",
        "payload_format": "AMPHI1.<base64url claims {c,t,k,d}>.<base64url signature>",
        "public_key": state.signer.public_key_b64(),
        "event_date": day.isoformat(),
        "gate": gate.value,
        "reentry": gate.value in settings.scan_reentry_gates,
        "timezone": settings.venue_timezone,
        "generated_at": state.clock().isoformat(),
        "tickets": tickets,
        # codes given away with their tickets: refuse them as transferred, not unknown
        "revoked": revoked,
    })


# A gate's clock may be off, not by centuries; beyond these, converting a time to the
# venue's zone would overflow the calendar.
_EARLIEST_SCAN = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST_SCAN = datetime(9000, 1, 1, tzinfo=UTC)


def _scanned_at(raw: Any, index: int) -> datetime:
    at: datetime | None = None
    try:
        parsed = datetime.fromisoformat(str(raw))
        if parsed.tzinfo is not None:
            at = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        pass
    if at is None or not _EARLIEST_SCAN <= at <= _LATEST_SCAN:
        raise errors.ValidationFailed(
            f"scans[{index}].scanned_at must be an ISO time with a UTC offset, "
            "between the years 2000 and 9000.",
            field=f"scans[{index}].scanned_at")
    return at


async def sync(request: Request) -> JSONResponse:
    """Apply scans recorded offline in time order, with the same duplicate rules."""
    _staff(request)
    body = await json_body(request, limit=SYNC_MAX_BYTES)
    device_id = field_text(body, "device_id", required=True, limit=128)
    scans = body.get("scans")
    if not isinstance(scans, list) or not 1 <= len(scans) <= SYNC_MAX_SCANS:
        raise errors.ValidationFailed(f"'scans' must be a list of 1-{SYNC_MAX_SCANS} scans.",
                                      field="scans")
    parsed = []
    for i, item in enumerate(scans):
        if not isinstance(item, dict):
            raise errors.ValidationFailed(f"scans[{i}] must be an object.", field=f"scans[{i}]")
        presented = field_text(item, "code", required=True, limit=512)
        admitted = item.get("admitted")
        if admitted is not None and not isinstance(admitted, bool):
            raise errors.ValidationFailed(f"scans[{i}].admitted must be true or false.")
        parsed.append((_scanned_at(item.get("scanned_at"), i), i, presented,
                       _gate(item.get("gate")), admitted))
    state, settings = amphi(request), amphi(request).settings

    def run() -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        results: list[dict[str, Any]] = [{}] * len(parsed)
        for at, i, presented, gate, device_admitted in sorted(parsed):
            code, ticket_id, refused = _read_code(request, presented)
            with state.sync_sessions.begin() as session:
                outcome = scan_ticket(
                    session, presented=presented, code=code, ticket_id=ticket_id, gate=gate,
                    device_id=device_id, at=at, tz=settings.venue_timezone,
                    reentry=gate.value in settings.scan_reentry_gates, source="offline",
                    refused=refused, device_admitted=device_admitted)
                entry = outcome_json(outcome)
            # The device let someone in whom the ledger refuses: the box office must know.
            entry["conflict"] = bool(device_admitted) and not entry["can_enter"]
            entry["index"] = i
            results[i] = entry
        # what the device must refuse from now on, for the days it scanned: its bundle may
        # be older than a transfer
        days = sorted({at.astimezone(ZoneInfo(settings.venue_timezone)).date()
                       for at, *_ in parsed})
        with state.sync_sessions() as session:
            return results, revoked_codes(session, days)

    results, revoked = await run_in_threadpool(run)
    conflicts = sum(1 for r in results if r["conflict"])
    log.info("offline scans synced", extra={"device_id": device_id, "scans": len(results),
                                            "conflicts": conflicts})
    return shapes.ok({"device_id": device_id, "applied": len(results), "conflicts": conflicts,
                      "results": results, "revoked": revoked})


routes = [
    Route("/api/tickets/scan/", scan, methods=["POST"]),
    Route("/api/tickets/scan/bundle/", bundle, methods=["GET"]),
    Route("/api/tickets/scan/sync/", sync, methods=["POST"]),
]
