"""POST /api/tickets/scan/ against the real app and a real PostgreSQL ledger, with tickets
bought through the product: who may scan, bad input, every rule with the signed payload and
with the plain code, forged codes refused before any lookup, the scan log, duplicates and
re-entry, the venue's date at the gates, and two devices scanning one ticket at once."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import ssl
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from amphi.access import Gate, TicketFacts, judge
from amphi.settings import Settings
from amphi.signing import Signer, ticket_claims
from ledger.models import Scan, Ticket
from ledger.scans import earlier_admission, scan_ticket
from tests._servers import amphi_env, uvicorn_server
from tests.scan._support import (
    JUNE_19,
    JUNE_20,
    JUNE_21,
    SCAN,
    Clock,
    Sold,
    TicketRow,
    fan,
    la,
    ok_data,
    refused,
    scan_api,
    scan_count,
    scan_rows,
    set_status,
    staff,
)

REPO = Path(__file__).resolve().parents[2]
TZ = "America/Los_Angeles"
FORGED = "invalid_signature"


async def scan(api: httpx.AsyncClient, settings: Settings, code: str, gate: str,
               device: str | None = "north-1") -> dict[str, Any]:
    body = {"code": code, "gate": gate}
    if device is not None:
        body["device_id"] = device
    resp = await api.post(SCAN, json=body, headers=staff(settings))
    return ok_data(resp)


PRESENT: dict[str, Callable[[TicketRow], str]] = {
    "signed": lambda t: t.qr_payload,
    "plain": lambda t: t.code,
    "lowercase": lambda t: t.code.lower(),
    "padded": lambda t: f"  {t.code}\n",
}


def assert_ticket_shown(result: dict[str, Any], t: TicketRow, status: str = "ISSUED") -> None:
    shown = result["ticket"]
    assert shown is not None, result
    assert (shown["id"], shown["code"], shown["kind"], shown["event_date"], shown["status"]) == (
        t.id, t.code, t.kind, t.event_date.isoformat(), status), shown
    assert (shown["section"], shown["row"], shown["seat"]) == (t.section, t.row, t.seat), shown
    assert shown["is_comp"] is (t.kind == "festival_day"), shown


# -- who may scan, and bad input ----------------------------------------------------------------
async def test_only_staff_may_scan(api: httpx.AsyncClient, settings: Settings, fresh: Sold,
                                   ledger_engine: Engine) -> None:
    body = {"code": fresh.amph().qr_payload, "gate": "amphitheater", "device_id": "north-1"}
    refused(await api.post(SCAN, json=body), 401)
    refused(await api.post(SCAN, json=body, headers={"Authorization": "Bearer not-a-jwt"}), 401)
    refused(await api.post(SCAN, json=body, headers={"Authorization": "Basic Zm9vOmJhcg=="}),
            401)
    error = refused(await api.post(SCAN, json=body, headers=fan(settings)), 403)
    assert error["code"] == "forbidden"
    assert scan_count(ledger_engine) == 0
    # the same request from staff goes through
    assert (await scan(api, settings, body["code"], "amphitheater"))["result"] == "admitted"


def _bad_bodies(code: str) -> list[tuple[str, dict[str, Any], int]]:
    good = {"code": code, "gate": "amphitheater", "device_id": "north-1"}
    return [
        ("not-json", {"content": b"code=AMPH-1&gate=festival"}, 400),
        ("empty-body", {"content": b""}, 400),
        ("json-array", {"json": [good]}, 400),
        ("json-string", {"json": code}, 400),
        ("missing-code", {"json": {"gate": "amphitheater"}}, 422),
        ("null-code", {"json": {**good, "code": None}}, 422),
        ("empty-code", {"json": {**good, "code": ""}}, 422),
        ("blank-code", {"json": {**good, "code": "   "}}, 422),
        ("numeric-code", {"json": {**good, "code": 12345}}, 422),
        ("list-code", {"json": {**good, "code": [code]}}, 422),
        ("huge-code", {"json": {**good, "code": code + "x" * 600}}, 422),
        ("missing-gate", {"json": {"code": code, "device_id": "north-1"}}, 422),
        ("bad-gate", {"json": {**good, "gate": "vip"}}, 422),
        ("uppercase-gate", {"json": {**good, "gate": "AMPHITHEATER"}}, 422),
        ("numeric-gate", {"json": {**good, "gate": 1}}, 422),
        ("huge-device", {"json": {**good, "device_id": "d" * 129}}, 422),
        ("numeric-device", {"json": {**good, "device_id": 7}}, 422),
        # PostgreSQL text cannot hold NUL: refused as input, never a failed INSERT
        ("nul-code", {"json": {**good, "code": "AMPH-\x00"}}, 422),
        ("nul-device", {"json": {**good, "device_id": "north\x00"}}, 422),
    ]


@pytest.mark.parametrize("case", [c[0] for c in _bad_bodies("X")])
async def test_bad_scan_requests_are_refused_and_not_logged(
        case: str, api: httpx.AsyncClient, settings: Settings, fresh: Sold,
        ledger_engine: Engine) -> None:
    name, kwargs, status = next(c for c in _bad_bodies(fresh.amph().qr_payload) if c[0] == case)
    headers = {**staff(settings)}
    if "content" in kwargs:
        headers["Content-Type"] = "application/json"
    resp = await api.post(SCAN, headers=headers, **kwargs)
    refused(resp, status)
    assert scan_count(ledger_engine) == 0, name


# -- the rules, through HTTP -----------------------------------------------------------------
@pytest.mark.parametrize("presentation", list(PRESENT))
async def test_every_rule_on_the_first_festival_day(
        presentation: str, api: httpx.AsyncClient, settings: Settings, fresh: Sold,
        clock: Clock, ledger_engine: Engine) -> None:
    """Saturday June 19, 6 PM at the venue: each ticket at each gate, once."""
    present = PRESENT[presentation]
    cases = [
        # ticket, gate, result, festival access, words the reason must contain
        (fresh.amph(JUNE_19), "amphitheater", "admitted", False, []),
        (fresh.amph(JUNE_19), "festival", "admitted", True, ["festival"]),
        (fresh.fest(JUNE_19), "festival", "admitted", False, []),
        (fresh.fest(JUNE_19), "amphitheater", "wrong_gate", False, ["festival", "amphitheatre"]),
        (fresh.amph(JUNE_20), "amphitheater", "wrong_date", False, ["Sunday, June 20, 2027"]),
        (fresh.amph(JUNE_20), "festival", "wrong_date", False, ["Sunday, June 20, 2027"]),
        (fresh.fest(JUNE_20), "festival", "wrong_date", False, ["Sunday, June 20, 2027"]),
        (fresh.amph(JUNE_21), "amphitheater", "wrong_date", False, ["Monday, June 21, 2027"]),
        (fresh.fest(JUNE_21), "festival", "wrong_date", False, ["Monday, June 21, 2027"]),
    ]
    for n, (ticket, gate, result, festival, words) in enumerate(cases):
        clock.set(la(JUNE_19, 18, n))
        device = f"{gate}-{n}"
        got = await scan(api, settings, present(ticket), gate, device)
        assert got["result"] == result, (ticket.code, gate, got)
        assert got["can_enter"] is (result == "admitted"), got
        assert got["festival_access_granted"] is festival, got
        for word in words:
            assert word in got["reason"], (word, got["reason"])
        assert_ticket_shown(got, ticket)
        assert datetime.fromisoformat(got["scanned_at"]) == clock.now
        [row] = scan_rows(ledger_engine, "device_id = :d", d=device)
        assert (str(row["ticket_id"]), row["gate"], row["scanned_at"], row["venue_date"],
                row["admitted"], row["result"], row["reason"], row["festival_access_granted"],
                row["source"]) == (ticket.id, gate, clock.now, JUNE_19, got["can_enter"],
                                   result, got["reason"], festival, "online"), row
    # a festival pass that was refused at the amphitheatre was not admitted anywhere
    assert scan_count(ledger_engine) == len(cases)


async def test_a_ticket_of_an_earlier_day_says_it_was_for_that_day(
        api: httpx.AsyncClient, settings: Settings, fresh: Sold, clock: Clock) -> None:
    clock.set(la(JUNE_21, 19))
    for ticket, gate in [(fresh.amph(JUNE_19), "amphitheater"), (fresh.fest(JUNE_20), "festival")]:
        got = await scan(api, settings, ticket.qr_payload, gate)
        assert (got["can_enter"], got["result"]) == (False, "wrong_date"), got
        day = ticket.event_date
        assert f"was for {day.strftime('%A, %B')} {day.day}, 2027" in got["reason"], got
    got = await scan(api, settings, fresh.amph(JUNE_21).qr_payload, "amphitheater")
    assert got["result"] == "admitted"


@pytest.fixture
def server_in_kiribati(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process' own zone is UTC+14: a server set to it would think it was tomorrow."""
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("server_in_kiribati")
async def test_the_gates_use_the_venue_date_not_utc_nor_the_servers(
        api: httpx.AsyncClient, settings: Settings, fresh: Sold, clock: Clock,
        ledger_engine: Engine) -> None:
    # 05:00 UTC on June 20 is 22:00 on Saturday June 19 in Los Angeles
    clock.set(datetime(2027, 6, 20, 5, 0, tzinfo=UTC))
    late = await scan(api, settings, fresh.amph(JUNE_19).qr_payload, "amphitheater", "late-1")
    assert late["result"] == "admitted", late
    early = await scan(api, settings, fresh.amph(JUNE_20).qr_payload, "amphitheater", "late-2")
    assert early["result"] == "wrong_date" and "is for Sunday, June 20" in early["reason"]
    [row] = scan_rows(ledger_engine, "device_id = 'late-1'")
    assert (row["venue_date"], row["scanned_at"]) == (JUNE_19, clock.now)

    # 07:30 UTC on June 20 is 00:30 on Sunday June 20 in Los Angeles
    clock.set(datetime(2027, 6, 20, 7, 30, tzinfo=UTC))
    sunday = await scan(api, settings, fresh.amph(JUNE_20).code, "amphitheater", "late-3")
    assert sunday["result"] == "admitted", sunday
    saturday = await scan(api, settings, fresh.fest(JUNE_19).code, "festival", "late-4")
    assert saturday["result"] == "wrong_date" and "was for Saturday, June 19" in saturday["reason"]
    [row] = scan_rows(ledger_engine, "device_id = 'late-3'")
    assert row["venue_date"] == JUNE_20


async def test_an_unknown_code_is_refused_and_logged(
        api: httpx.AsyncClient, settings: Settings, fresh: Sold, clock: Clock,
        ledger_engine: Engine) -> None:
    for presented in ("AMPH-NOTAREAL23", "fest-nosuchpass", "hello"):
        got = await scan(api, settings, presented, "festival", "south-2")
        assert (got["can_enter"], got["result"], got["ticket"]) == (False, "unknown_ticket", None)
        assert "not found" in got["reason"].lower() and "box office" in got["reason"].lower()
    rows = scan_rows(ledger_engine)
    assert [(r["ticket_id"], r["code"], r["result"], r["admitted"]) for r in rows] == [
        (None, p, "unknown_ticket", False) for p in ("AMPH-NOTAREAL23", "fest-nosuchpass", "hello")]


# -- forged and altered payloads ---------------------------------------------------------------
def _swap_claims(payload: str, **change: str) -> str:
    import base64

    prefix, body, sig = payload.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims.update(change)
    raw = json.dumps(claims, separators=(",", ":"), sort_keys=True).encode()
    return f"{prefix}.{base64.urlsafe_b64encode(raw).rstrip(b'=').decode()}.{sig}"


def forgeries(target: TicketRow, other: TicketRow) -> dict[str, str]:
    """Payloads naming `target` (its id and code) that its issuer never signed."""
    stranger = Signer(Ed25519PrivateKey.generate())
    claims = ticket_claims(code=target.code, ticket_id=target.id, kind=target.kind,
                           event_date=target.event_date.isoformat())
    head, sig = target.qr_payload.rsplit(".", 1)
    mid = len(sig) // 2
    return {
        "other-key": stranger.sign(claims),
        "borrowed-signature": f"{head}.{other.qr_payload.rsplit('.', 1)[1]}",
        "other-date": _swap_claims(target.qr_payload, d="2027-06-21"),
        "other-ticket-id": _swap_claims(other.qr_payload, t=target.id, c=target.code),
        "flipped-signature": f"{head}.{sig[:mid]}{'A' if sig[mid] != 'A' else 'B'}{sig[mid + 1:]}",
        "no-signature": f"{head}.",
        "garbage": "AMPHI1.garbage.garbage",
    }


async def test_forged_and_altered_payloads_are_refused_and_logged_without_a_ticket(
        api: httpx.AsyncClient, settings: Settings, fresh: Sold, ledger_engine: Engine) -> None:
    target = fresh.amph(JUNE_19)
    fakes = forgeries(target, fresh.amph(JUNE_19, 2))
    for n, (name, payload) in enumerate(fakes.items()):
        got = await scan(api, settings, payload, "amphitheater", f"dev-{n}")
        assert (got["can_enter"], got["result"], got["ticket"],
                got["festival_access_granted"]) == (False, FORGED, None, False), (name, got)
        assert "not a genuine ticket" in got["reason"], got
    rows = scan_rows(ledger_engine)
    assert len(rows) == len(fakes)
    for row, payload in zip(rows, fakes.values(), strict=True):
        assert (row["ticket_id"], row["result"], row["admitted"], row["code"]) == (
            None, FORGED, False, payload[:64]), row
    # none of them counted as an admission of the real ticket
    assert (await scan(api, settings, target.qr_payload, "amphitheater"))["result"] == "admitted"


async def test_a_forged_payload_is_refused_without_touching_the_ticket_it_names(
        api: httpx.AsyncClient, settings: Settings, fresh: Sold, ledger_engine: Engine) -> None:
    """Another transaction holds the named ticket's row lock: a scan that looked the ticket
    up would wait for it (as the genuine payload does), a forged one is answered at once."""
    target = fresh.amph(JUNE_19)
    fakes = forgeries(target, fresh.amph(JUNE_19, 2))
    with ledger_engine.connect() as conn:
        tx = conn.begin()
        conn.execute(text("SELECT id FROM tickets WHERE id = :id FOR UPDATE"), {"id": target.id})
        try:
            for name, payload in fakes.items():
                resp = await asyncio.wait_for(api.post(SCAN, json={
                    "code": payload, "gate": "amphitheater", "device_id": name},
                    headers=staff(settings)), timeout=5)
                got = ok_data(resp)
                assert (got["result"], got["ticket"]) == (FORGED, None), (name, got)
            genuine = asyncio.ensure_future(api.post(SCAN, json={
                "code": target.qr_payload, "gate": "amphitheater", "device_id": "genuine"},
                headers=staff(settings)))
            await asyncio.sleep(0.5)
            assert not genuine.done(), "the genuine scan should be waiting for the row lock"
        finally:
            tx.rollback()
    got = ok_data(await asyncio.wait_for(genuine, timeout=10))
    assert got["result"] == "admitted", got


# -- voided and refunded -------------------------------------------------------------------------
@pytest.mark.parametrize(("status", "result", "word"), [("void", "voided", "void"),
                                                        ("refunded", "refunded", "refund")])
async def test_voided_and_refunded_tickets_are_refused(
        status: str, result: str, word: str, api: httpx.AsyncClient, settings: Settings,
        fresh: Sold, clock: Clock, ledger_engine: Engine) -> None:
    amph, fest = fresh.amph(JUNE_19), fresh.fest(JUNE_19)
    set_status(ledger_engine, amph.id, status)
    set_status(ledger_engine, fest.id, status)
    for n, (ticket, gate, presented) in enumerate([
            (amph, "amphitheater", amph.qr_payload), (amph, "festival", amph.code.lower()),
            (fest, "festival", fest.qr_payload), (fest, "festival", fest.code)]):
        clock.set(la(JUNE_19, 18, n))
        got = await scan(api, settings, presented, gate, f"dev-{n}")
        assert (got["can_enter"], got["result"], got["festival_access_granted"]) == (
            False, result, False), got
        assert word in got["reason"].lower(), got
        assert_ticket_shown(got, ticket, status.upper())
    rows = scan_rows(ledger_engine)
    assert [(str(r["ticket_id"]), r["result"], r["admitted"]) for r in rows] == [
        (amph.id, result, False), (amph.id, result, False), (fest.id, result, False),
        (fest.id, result, False)]
    # reinstated, the ticket enters: the refusals were not admissions
    set_status(ledger_engine, amph.id, "issued")
    assert (await scan(api, settings, amph.code, "amphitheater"))["result"] == "admitted"


# -- the scan log ------------------------------------------------------------------------------
async def test_every_scan_is_logged_with_ticket_gate_device_time_result_and_reason(
        api: httpx.AsyncClient, settings: Settings, fresh: Sold, clock: Clock,
        ledger_engine: Engine) -> None:
    amph, fest, sunday = fresh.amph(JUNE_19), fresh.fest(JUNE_19), fresh.amph(JUNE_20)
    steps = [  # minutes after 5 PM, presented, gate, device
        (0, amph.qr_payload, "amphitheater", "north-1"),
        (1, amph.code, "amphitheater", "north-2"),
        (2, amph.qr_payload, "festival", "fest-1"),
        (3, fest.qr_payload, "amphitheater", "north-1"),
        (4, fest.code, "festival", "fest-2"),
        (5, sunday.qr_payload, "amphitheater", "north-3"),
        (6, "AMPH-UNKNOWN222", "festival", "fest-3"),
        (7, forgeries(amph, fest)["other-key"], "festival", "fest-1"),
        (8, amph.code, "festival", None),  # a device that does not say which it is
    ]
    answers = []
    for minute, presented, gate, device in steps:
        clock.set(la(JUNE_19, 17, minute))
        answers.append(await scan(api, settings, presented, gate, device))
    rows = scan_rows(ledger_engine)
    assert len(rows) == len(steps)
    for (minute, presented, gate, device), got, row in zip(steps, answers, rows, strict=True):
        ticket_id = got["ticket"]["id"] if got["ticket"] else None
        assert (str(row["ticket_id"]) if row["ticket_id"] else None) == ticket_id
        assert row["code"] == presented.strip()[:64]
        assert (row["gate"], row["device_id"]) == (gate, device or "")
        assert row["scanned_at"] == la(JUNE_19, 17, minute)
        assert row["venue_date"] == JUNE_19
        assert (row["admitted"], row["result"], row["reason"]) == (
            got["can_enter"], got["result"], got["reason"])
        assert row["festival_access_granted"] is got["festival_access_granted"]
        assert row["source"] == "online"
    assert [g["result"] for g in answers] == [
        "admitted", "already_scanned", "admitted", "wrong_gate", "admitted", "wrong_date",
        "unknown_ticket", FORGED, "already_scanned"]


# -- duplicates and re-entry ----------------------------------------------------------------
async def test_a_second_scan_at_the_same_gate_says_when_and_where_it_was_first_scanned(
        api: httpx.AsyncClient, settings: Settings, fresh: Sold, clock: Clock,
        ledger_engine: Engine) -> None:
    amph = fresh.amph(JUNE_19)
    clock.set(la(JUNE_19, 18, 5))
    first = await scan(api, settings, amph.qr_payload, "amphitheater", "north-1")
    assert first["result"] == "admitted"

    clock.set(la(JUNE_19, 20, 40))
    for device, presented in [("north-2", amph.code), ("north-3", amph.qr_payload),
                              ("north-1", amph.code.lower())]:
        again = await scan(api, settings, presented, "amphitheater", device)
        assert (again["can_enter"], again["result"]) == (False, "already_scanned"), again
        # the first admission's time (venue time, not UTC: 01:05 UTC) and device
        assert "6:05 PM" in again["reason"] and "north-1" in again["reason"], again
        assert "amphitheater gate" in again["reason"], again
        assert_ticket_shown(again, amph)

    # the other gate is another admission, once
    clock.set(la(JUNE_19, 21))
    assert (await scan(api, settings, amph.code, "festival", "fest-9"))["result"] == "admitted"
    clock.set(la(JUNE_19, 21, 30))
    again = await scan(api, settings, amph.qr_payload, "festival", "fest-8")
    assert again["result"] == "already_scanned" and "9:00 PM" in again["reason"]
    assert "fest-9" in again["reason"]
    assert [r["admitted"] for r in scan_rows(ledger_engine)] == [
        True, False, False, False, True, False]


async def test_a_refused_scan_is_not_an_admission(
        api: httpx.AsyncClient, settings: Settings, fresh: Sold, clock: Clock,
        ledger_engine: Engine) -> None:
    fest = fresh.fest(JUNE_19)
    assert (await scan(api, settings, fest.code, "amphitheater"))["result"] == "wrong_gate"
    set_status(ledger_engine, fest.id, "void")
    assert (await scan(api, settings, fest.code, "festival"))["result"] == "voided"
    set_status(ledger_engine, fest.id, "issued")
    assert (await scan(api, settings, fest.code, "festival"))["result"] == "admitted"


async def test_re_entry_where_the_gate_allows_it(
        open_scan_api, settings: Settings, fresh: Sold, clock: Clock,
        ledger_engine: Engine) -> None:
    amph, fest = fresh.amph(JUNE_19), fresh.fest(JUNE_19)
    async with open_scan_api(scan_reentry_gates=("festival",)) as api:
        for n in range(3):
            clock.set(la(JUNE_19, 17 + n))
            back = await scan(api, settings, amph.qr_payload, "festival", f"fest-{n}")
            assert (back["can_enter"], back["result"], back["festival_access_granted"]) == (
                True, "admitted", True), back
            assert (await scan(api, settings, fest.code, "festival"))["result"] == "admitted"
        assert (await scan(api, settings, amph.code, "amphitheater"))["result"] == "admitted"
        again = await scan(api, settings, amph.code, "amphitheater", "north-4")
        assert again["result"] == "already_scanned", again
    assert Counter((r["gate"], r["admitted"]) for r in scan_rows(ledger_engine)) == {
        ("festival", True): 6, ("amphitheater", True): 1, ("amphitheater", False): 1}


# -- two devices, one ticket, the same instant -----------------------------------------------------
@pytest.fixture(scope="module")
def live_server(sold: Sold, settings: Settings,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """uvicorn (`tests.scan._live_app`, configured by the environment, its gate clock at
    June 19 2027 6 PM in Los Angeles); yields its base URL."""
    env = amphi_env(settings, SCAN_TEST_NOW=la(JUNE_19, 18).isoformat())
    with uvicorn_server("tests.scan._live_app:app_from_env", env=env,
                        log_dir=tmp_path_factory.mktemp("uvicorn-scan")) as url:
        yield url


DEVICES = 20


@pytest.mark.parametrize(("which", "gate", "presentation"), [
    ("amph", "amphitheater", "signed"), ("amph", "festival", "plain"),
    ("fest", "festival", "signed")])
def test_devices_scanning_one_ticket_at_once_admit_it_once(
        which: str, gate: str, presentation: str, live_server: str, fresh: Sold,
        settings: Settings, ledger_engine: Engine) -> None:
    ticket = fresh.amph(JUNE_19) if which == "amph" else fresh.fest(JUNE_19)
    presented = PRESENT[presentation](ticket)
    headers = staff(settings)
    barrier = threading.Barrier(DEVICES)
    tls = ssl.create_default_context()  # one for all clients: loading CAs is slow

    def device(n: int) -> dict[str, Any]:
        with httpx.Client(base_url=live_server, timeout=30, verify=tls) as client:
            client.get("/healthz")  # connected before the start
            barrier.wait(10)
            resp = client.post(SCAN, json={"code": presented, "gate": gate,
                                           "device_id": f"gate-{n}"}, headers=headers)
        return ok_data(resp)

    with concurrent.futures.ThreadPoolExecutor(DEVICES) as pool:
        answers = list(pool.map(device, range(DEVICES)))
    results = Counter(a["result"] for a in answers)
    assert results == {"admitted": 1, "already_scanned": DEVICES - 1}, results
    [winner] = [n for n, a in enumerate(answers) if a["can_enter"]]
    for a in answers:
        if not a["can_enter"]:
            assert f"gate-{winner}" in a["reason"] and "6:00 PM" in a["reason"], a
    rows = scan_rows(ledger_engine)
    assert len(rows) == DEVICES
    assert [r["device_id"] for r in rows if r["admitted"]] == [f"gate-{winner}"]
    assert {str(r["ticket_id"]) for r in rows} == {ticket.id}


# -- the row lock is what makes it once ------------------------------------------------------------
AT = la(JUNE_19, 18)


@pytest.fixture
def thread_sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    """A session factory with a connection for each of DEVICES threads."""
    engine = create_engine(settings.database_url, pool_size=DEVICES + 2)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


def check_then_insert(sessions: sessionmaker[Session], ticket_id: uuid.UUID, device: str,
                      barrier: threading.Barrier, *, lock: bool) -> bool:
    """scan_ticket's steps, written out, with a pause between the check and the insert; with
    or without the ticket row lock. Returns whether it admitted."""
    barrier.wait(10)
    with sessions.begin() as session:
        query = select(Ticket).where(Ticket.id == ticket_id)
        ticket = session.scalar(query.with_for_update() if lock else query)
        earlier = earlier_admission(session, ticket.id, Gate.AMPHITHEATER, JUNE_19, TZ)
        facts = TicketFacts(ticket.kind.value, ticket.status.value, ticket.event_date)
        decision = judge(facts, Gate.AMPHITHEATER, JUNE_19, earlier)
        time.sleep(0.05)  # the window between the check and the write
        session.add(Scan(ticket_id=ticket.id, code=ticket.code, gate="amphitheater",
                         device_id=device, scanned_at=AT, venue_date=JUNE_19,
                         admitted=decision.can_enter, result=decision.code,
                         reason=decision.reason, source="online"))
    return decision.can_enter


def _in_threads(fn: Callable[[int], bool]) -> int:
    with concurrent.futures.ThreadPoolExecutor(DEVICES) as pool:
        return sum(pool.map(fn, range(DEVICES)))


def test_without_the_row_lock_the_same_check_admits_more_than_once(
        fresh: Sold, thread_sessions: sessionmaker[Session], ledger_engine: Engine) -> None:
    """The control: the race is real, so the lock (next test) is what prevents it."""
    ticket_id, barrier = fresh.amph(JUNE_19).uuid, threading.Barrier(DEVICES)
    admitted = _in_threads(lambda n: check_then_insert(thread_sessions, ticket_id, f"d{n}",
                                                       barrier, lock=False))
    assert admitted > 1
    assert sum(r["admitted"] for r in scan_rows(ledger_engine)) == admitted


def test_with_the_row_lock_the_same_check_admits_once(
        fresh: Sold, thread_sessions: sessionmaker[Session], ledger_engine: Engine) -> None:
    ticket_id, barrier = fresh.amph(JUNE_19).uuid, threading.Barrier(DEVICES)
    admitted = _in_threads(lambda n: check_then_insert(thread_sessions, ticket_id, f"d{n}",
                                                       barrier, lock=True))
    assert admitted == 1
    assert len(scan_rows(ledger_engine)) == DEVICES


def test_concurrent_scan_ticket_calls_admit_once(
        fresh: Sold, thread_sessions: sessionmaker[Session], ledger_engine: Engine) -> None:
    ticket, barrier = fresh.fest(JUNE_19), threading.Barrier(DEVICES)

    def device(n: int) -> bool:
        barrier.wait(10)
        with thread_sessions.begin() as session:
            return scan_ticket(session, presented=ticket.code, code=ticket.code, ticket_id=None,
                               gate=Gate.FESTIVAL, device_id=f"d{n}", at=AT, tz=TZ,
                               reentry=False).decision.can_enter

    assert _in_threads(device) == 1
    assert sum(r["admitted"] for r in scan_rows(ledger_engine)) == 1


def _wait_for_a_lock_waiter(engine: Engine) -> None:
    deadline = time.monotonic() + 10
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()")).scalar_one()

            if waiting:
                return
            conn.rollback()  # pg_stat_activity is a snapshot per transaction
            time.sleep(0.02)
    pytest.fail("the second scan never waited for the ticket lock")


def test_a_scan_that_read_the_clock_first_but_locked_second_is_still_refused(
        fresh: Sold, thread_sessions: sessionmaker[Session], ledger_engine: Engine) -> None:
    """api/scan.py reads the clock (`at=state.clock()`) before scan_ticket takes the row
    lock, and ledger/scans.py `earlier_admission` only counts admissions with
    `scanned_at <= at`. Device B reads 18:00:00.000, device A reads 18:00:00.001 and wins
    the lock; when B gets the lock it looks for admissions at or before 18:00:00.000, finds
    none, and admits the ticket a second time."""
    ticket = fresh.amph(JUNE_19)

    def scan_at(session: Session, at: datetime, device: str) -> bool:
        return scan_ticket(session, presented=ticket.code, code=ticket.code, ticket_id=None,
                           gate=Gate.AMPHITHEATER, device_id=device, at=at, tz=TZ,
                           reentry=False).decision.can_enter

    def device_b() -> bool:
        with thread_sessions.begin() as session:
            return scan_at(session, AT, "device-b")

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        with thread_sessions.begin() as session_a:
            assert scan_at(session_a, AT + timedelta(milliseconds=1), "device-a")
            b = pool.submit(device_b)  # B's clock read 18:00:00.000; it now waits for A's lock
            _wait_for_a_lock_waiter(ledger_engine)
        b_admitted = b.result(10)
    admitted = [r["device_id"] for r in scan_rows(ledger_engine) if r["admitted"]]
    assert not b_admitted and admitted == ["device-a"], f"admitted twice: {admitted}"


async def test_two_requests_whose_clock_readings_cross_admit_once(
        fresh: Sold, settings: Settings, ledger_engine: Engine) -> None:
    """The same through HTTP: the first request's thread reads the gate clock, then is
    descheduled for 0.3 s before it reaches the ticket lock; the second reads the clock a
    moment later and goes straight through. The ticket is admitted twice."""
    start, lock, calls = la(JUNE_19, 18), threading.Lock(), []

    def clock() -> datetime:
        with lock:
            calls.append(1)
            n = len(calls)
        if n == 1:
            time.sleep(0.3)
            return start
        return start + timedelta(milliseconds=5)

    amph = fresh.amph(JUNE_19)
    async with scan_api(settings, clock) as api:
        answers = await asyncio.gather(*[
            api.post(SCAN, json={"code": amph.qr_payload, "gate": "amphitheater",
                                 "device_id": f"gate-{n}"}, headers=staff(settings))
            for n in range(2)])
    results = sorted(ok_data(a)["result"] for a in answers)
    assert results == ["admitted", "already_scanned"], results

