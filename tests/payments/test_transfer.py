"""Ticket transfer: an owner gives an amphitheatre ticket, with its festival pass, to someone
else. The recipient sees it with new codes and gets them by email; the giver no longer has
it; the old codes open no gate, online or offline after a sync; a ticket used at a gate, or
too close to the show, stays where it is; a transfer and a scan at the same moment have one
outcome."""

from __future__ import annotations

import asyncio
import concurrent.futures
import email
import threading
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from amphi.access import Gate
from amphi.settings import Settings
from amphi.signing import load_signer
from ledger.db import session_factory
from ledger.scans import scan_ticket
from ledger.transfers import Giver, transfer_ticket
from tests.payments._support import bearer, checkout, confirm, make_hold, rows, scalar
from tests.scan._support import (
    BUNDLE,
    JUNE_19,
    SCAN,
    SYNC,
    Clock,
    device_verify,
    la,
    ok_data,
    refused,
    scan_api,
    staff,
)

TZ = "America/Los_Angeles"
MY_AMPH = "/api/tickets/amphitheater/my-tickets/"
BEFORE = la(JUNE_19 - timedelta(days=9), 12)  # transfers open
SHOW = la(JUNE_19, 18)  # the gates are open


def transfer_url(ticket_id: str) -> str:
    return f"/api/tickets/{ticket_id}/transfer/"


async def _buy(api: httpx.AsyncClient, venue, headers: dict[str, str], email_: str,
               quantity: int) -> list[dict[str, Any]]:
    hold = await make_hold(api, venue.sections["Terrace"], quantity, headers=headers)
    order = await checkout(api, hold["hold_id"], email=email_, headers=headers)
    assert (await confirm(api, order["order_id"], headers=headers)).status_code == 200
    return ok_data(await api.get(MY_AMPH, headers=headers))


async def _scan(api, steward, code: str, gate: str = "amphitheater") -> dict[str, Any]:
    return ok_data(await api.post(SCAN, json={"code": code, "gate": gate, "device_id": "d1"},
                                  headers=steward))


async def test_a_transfer_moves_the_ticket_and_its_pass_with_new_codes(
        demo_settings: Settings, venue, ledger_engine: Engine, worker) -> None:
    clock = Clock(BEFORE)
    ana, ben = (bearer(demo_settings, "ana", "ana@example.com"),
                bearer(demo_settings, "ben", "ben@example.com"))
    async with scan_api(demo_settings, clock) as api:
        bought = await _buy(api, venue, ana, "ana@example.com", 2)
        given, kept = bought
        old_payload = ticket_payload(ledger_engine, given["id"])
        done = ok_data(await api.post(transfer_url(given["id"]), headers=ana,
                                      json={"email": "Ben@Example.com"}))
        assert done["status"] == "TRANSFERRED" and done["ticket_id"] == given["id"]

        mine = ok_data(await api.get(MY_AMPH, headers=ana))
        assert [t["id"] for t in mine] == [kept["id"]]
        theirs = ok_data(await api.get(MY_AMPH, headers=ben))
        assert [t["id"] for t in theirs] == [given["id"]]
        got = theirs[0]
        assert got["seat_location"] == given["seat_location"]
        assert got["ticket_code"] != given["ticket_code"]
        assert got["festival_day_ticket_code"] != given["festival_day_ticket_code"]

        clock.set(SHOW)
        steward = staff(demo_settings)
        for code in (given["ticket_code"], old_payload):
            for gate in ("amphitheater", "festival"):
                result = await _scan(api, steward, code, gate)
                assert (result["can_enter"], result["result"]) == (False, "transferred"), result
        result = await _scan(api, steward, given["festival_day_ticket_code"], "festival")
        assert result["result"] == "transferred"
        assert (await _scan(api, steward, got["ticket_code"]))["can_enter"] is True
        assert (await _scan(api, steward, ticket_payload(ledger_engine, given["id"]),
                            "festival"))["can_enter"] is True  # the new signed payload

    # in the ledger (and the admin): who gave what to whom, and the scans of its ticket id
    (row,) = rows(ledger_engine, "SELECT * FROM ticket_transfers")
    assert (str(row["ticket_id"]), row["old_code"], row["from_email"], row["to_email"],
            row["version"]) == (given["id"], given["ticket_code"], "ana@example.com",
                                "Ben@Example.com", 2)
    assert scalar(ledger_engine, "SELECT count(*) FROM scans WHERE ticket_id = :t",
                  t=uuid.UUID(given["id"])) == 6

    worker.run(demo_settings)  # the recipient's email, with the new code and its QR image
    (sent,) = [m for m in outbox(demo_settings) if "sent you a ticket" in text_of(m)]
    assert sent["To"] == "Ben@Example.com"
    assert got["ticket_code"] in text_of(sent) and given["ticket_code"] not in text_of(sent)
    assert any(part.get_content_type() == "image/png" for part in sent.walk())
    assert scalar(ledger_engine, "SELECT email_sent_at IS NOT NULL FROM ticket_transfers")


async def test_what_cannot_be_transferred(demo_settings: Settings, venue,
                                          ledger_engine: Engine, worker) -> None:
    clock = Clock(BEFORE)
    ana = bearer(demo_settings, "ana", "ana@example.com")
    async with scan_api(demo_settings, clock) as api:
        first, second = await _buy(api, venue, ana, "ana@example.com", 2)
        url = transfer_url(first["id"])
        body = {"email": "ben@example.com"}
        refused(await api.post(url, json=body), 401)
        refused(await api.post(url, json=body, headers=bearer(demo_settings, "eve")), 403)
        fest_id = scalar(ledger_engine, "SELECT id FROM tickets WHERE code = :c",
                         c=first["festival_day_ticket_code"])
        assert refused(await api.post(transfer_url(str(fest_id)), json=body, headers=ana),
                       404)["code"] == "ticket_not_found"
        refused(await api.post(transfer_url(str(uuid.uuid4())), json=body, headers=ana), 404)
        for bad in ({"email": "not an email"}, {"email": ""}, {}, {"email": 3},
                    {"email": "ana@example.com"}):  # to oneself
            assert refused(await api.post(url, json=bad, headers=ana), 422)["code"] == \
                "validation_error"
        refused(await api.post(transfer_url("nope"), json=body, headers=ana), 422)

        clock.set(SHOW)  # used at a gate: it stays with its holder, even before the cutoff
        await _scan(api, staff(demo_settings), first["ticket_code"], "festival")
        clock.set(BEFORE)
        error = refused(await api.post(url, json=body, headers=ana), 409)
        assert error["code"] == "transfer_refused" and "used at a gate" in error["message"]

        # transfers close TRANSFER_CLOSE_HOURS (24) before the show's day begins
        clock.set(la(JUNE_19 - timedelta(days=1), 0) - timedelta(minutes=1))
        ok_data(await api.post(transfer_url(second["id"]), json=body, headers=ana))
        clock.set(la(JUNE_19 - timedelta(days=1), 0))
        ben = bearer(demo_settings, "ben", "ben@example.com")
        error = refused(await api.post(transfer_url(second["id"]), headers=ben,
                                       json={"email": "cleo@example.com"}), 409)
        assert "closed" in error["message"]
    assert scalar(ledger_engine, "SELECT count(*) FROM ticket_transfers") == 1


def test_a_transfer_and_a_scan_at_the_same_moment_have_one_outcome(
        demo_settings: Settings, venue, ledger_engine: Engine) -> None:
    """For each of a party's tickets, a transfer and an online scan of its code start at
    once, on their own connections: either the guest is admitted and the ticket stays, or
    the ticket moves and the code is refused; never both."""

    async def buy() -> list[dict[str, Any]]:
        async with scan_api(demo_settings, Clock(BEFORE)) as api:
            return await _buy(api, venue, bearer(demo_settings, "ana", "ana@example.com"),
                              "ana@example.com", 8)

    tickets = asyncio.run(buy())
    sessions: sessionmaker = session_factory(ledger_engine)
    signer = load_signer(demo_settings.ticket_signing_key, demo_settings.ticket_signing_key_file)
    giver = Giver("ana", "ana@example.com")
    outcomes = []
    for t in tickets:
        barrier = threading.Barrier(2)

        def give(t: dict[str, Any] = t, barrier: threading.Barrier = barrier) -> str:
            barrier.wait()
            try:
                with sessions.begin() as session:
                    transfer_ticket(session, uuid.UUID(t["id"]), giver=giver,
                                    to_email="ben@example.com", signer=signer,
                                    now=BEFORE, close_hours=24, tz=TZ)
                return "transferred"
            except Exception as exc:
                return type(exc).__name__

        def scan(t: dict[str, Any] = t, barrier: threading.Barrier = barrier) -> bool:
            barrier.wait()
            with sessions.begin() as session:
                return scan_ticket(session, presented=t["ticket_code"], code=t["ticket_code"],
                                   ticket_id=None, gate=Gate.AMPHITHEATER, device_id="d1",
                                   at=la(JUNE_19, 17), tz=TZ, reentry=False).decision.can_enter

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            given, admitted = pool.submit(give), pool.submit(scan)
            outcomes.append((given.result(), admitted.result()))
    assert all(o in (("transferred", False), ("TransferRefused", True)) for o in outcomes), \
        outcomes
    moved = scalar(ledger_engine, "SELECT count(*) FROM ticket_transfers")
    assert moved == sum(1 for o in outcomes if o[0] == "transferred")


async def test_an_offline_gate_refuses_old_codes_after_its_sync(
        demo_settings: Settings, venue, ledger_engine: Engine) -> None:
    """A device with a bundle from before the transfer cannot know; its next sync tells it
    which codes were given away, and a new bundle has the new code."""
    clock = Clock(BEFORE)
    ana = bearer(demo_settings, "ana", "ana@example.com")
    async with scan_api(demo_settings, clock) as api:
        (ticket,) = await _buy(api, venue, ana, "ana@example.com", 1)
        old_payload = ticket_payload(ledger_engine, ticket["id"])
        steward = staff(demo_settings)
        params = {"event_date": JUNE_19.isoformat(), "gate": "festival"}
        before = ok_data(await api.get(BUNDLE, params=params, headers=steward))
        device = OfflineDevice(before)
        assert device.admits(old_payload)
        ok_data(await api.post(transfer_url(ticket["id"]), json={"email": "ben@example.com"},
                               headers=ana))

        clock.set(SHOW)
        synced = ok_data(await api.post(SYNC, headers=steward, json={
            "device_id": "d1", "scans": [{"code": "AMPH-UNKNOWN00", "gate": "festival",
                                          "scanned_at": SHOW.isoformat(), "admitted": False}]}))
        device.revoke(synced["revoked"])
        assert not device.admits(old_payload), "the old code opened an offline gate"
        after = ok_data(await api.get(BUNDLE, params=params, headers=steward))
        assert {"id": ticket["id"], "code": ticket["ticket_code"]} in after["revoked"]
        fresh = OfflineDevice(after)
        assert not fresh.admits(old_payload)
        assert fresh.admits(ticket_payload(ledger_engine, ticket["id"]))


# -- helpers ----------------------------------------------------------------------------------
class OfflineDevice:
    """A gate device's offline rule, from the bundle's documented format: a genuine payload
    whose code is its ticket's code in the bundle, and not one revoked."""

    def __init__(self, bundle: dict[str, Any]) -> None:
        self.verify = device_verify
        self.key = bundle["public_key"]
        self.codes = {t["id"]: t["code"] for t in bundle["tickets"]}
        self.revoked: set[str] = set()
        self.revoke(bundle["revoked"])

    def revoke(self, entries: list[dict[str, str]]) -> None:
        self.revoked |= {e["code"] for e in entries}

    def admits(self, payload: str) -> bool:
        claims = self.verify(payload, self.key)
        return (claims is not None and self.codes.get(claims["t"]) == claims["c"]
                and claims["c"] not in self.revoked)


def ticket_payload(engine: Engine, ticket_id: str) -> str:
    return scalar(engine, "SELECT qr_payload FROM tickets WHERE id = :t", t=uuid.UUID(ticket_id))


def outbox(settings: Settings) -> list[email.message.Message]:
    return [email.message_from_bytes(p.read_bytes())
            for p in sorted(Path(settings.outbox_dir).glob("*.eml"))]


def text_of(msg: email.message.Message) -> str:
    return "".join(part.get_payload(decode=True).decode()
                   for part in msg.walk() if part.get_content_type() == "text/plain")
