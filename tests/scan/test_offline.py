"""Offline gates: the bundle a device downloads (the public key and the day's tickets for
its gate), the device verifying signed codes with that key alone, and the sync of scans
recorded offline (applied in time order with the duplicate rules, conflicts reported)."""

from __future__ import annotations

import base64
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from amphi.settings import Settings
from amphi.signing import Signer, ticket_claims
from tests.scan._support import (
    BUNDLE,
    JUNE_19,
    JUNE_20,
    SCAN,
    SYNC,
    TEST_SIGNING_KEY,
    Clock,
    Sold,
    TicketRow,
    device_verify,
    fan,
    la,
    ok_data,
    refused,
    scan_count,
    scan_rows,
    set_status,
    staff,
)


async def bundle(api: httpx.AsyncClient, settings: Settings, **params: str) -> dict[str, Any]:
    return ok_data(await api.get(BUNDLE, params=params, headers=staff(settings)))


def item(presented: str, gate: str, at: datetime, admitted: bool | None = True) -> dict:
    entry = {"code": presented, "gate": gate, "scanned_at": at.isoformat()}
    if admitted is not None:
        entry["admitted"] = admitted
    return entry


async def sync(api: httpx.AsyncClient, settings: Settings, scans: list[dict],
               device: str = "offline-7") -> dict[str, Any]:
    return ok_data(await api.post(SYNC, json={"device_id": device, "scans": scans},
                                  headers=staff(settings)))


# -- the bundle --------------------------------------------------------------------------------
async def test_the_bundle_is_for_staff_only(api: httpx.AsyncClient, settings: Settings) -> None:
    params = {"event_date": "2027-06-19", "gate": "festival"}
    refused(await api.get(BUNDLE, params=params), 401)
    refused(await api.get(BUNDLE, params=params, headers=fan(settings)), 403)
    refused(await api.post(SYNC, json={"device_id": "d", "scans": []}), 401)
    refused(await api.post(SYNC, json={"device_id": "d", "scans": []}, headers=fan(settings)),
            403)


def entries(tickets: list[TicketRow], statuses: dict[str, str] | None = None) -> list[dict]:
    statuses = statuses or {}
    return sorted(({"id": t.id, "code": t.code, "kind": t.kind,
                    "status": statuses.get(t.id, "issued")} for t in tickets),
                  key=lambda e: e["code"])


async def test_the_festival_gate_bundle_lists_the_days_tickets_and_passes(
        api: httpx.AsyncClient, settings: Settings, fresh: Sold, ledger_engine: Engine) -> None:
    void, refunded = fresh.amph(JUNE_19, 2), fresh.fest(JUNE_19, 3)
    set_status(ledger_engine, void.id, "void")
    set_status(ledger_engine, refunded.id, "refunded")
    got = await bundle(api, settings, event_date="2027-06-19", gate="festival")
    assert (got["algorithm"], got["event_date"], got["gate"], got["reentry"],
            got["timezone"]) == ("Ed25519", "2027-06-19", "festival", False,
                                 "America/Los_Angeles")
    day = [t for t in fresh.tickets if t.event_date == JUNE_19]
    assert {t.kind for t in day} == {"amphitheater", "festival_day"}
    assert sorted(got["tickets"], key=lambda e: e["code"]) == entries(
        day, {void.id: "void", refunded.id: "refunded"})
    # the key the app signs with (TICKET_SIGNING_KEY), public half only
    seed = base64.b64decode(TEST_SIGNING_KEY)
    assert got["public_key"] == Signer(Ed25519PrivateKey.from_private_bytes(seed)).public_key_b64()
    assert TEST_SIGNING_KEY not in str(got)


async def test_the_amphitheatre_gate_bundle_has_no_festival_passes(
        api: httpx.AsyncClient, settings: Settings, fresh: Sold) -> None:
    got = await bundle(api, settings, event_date="2027-06-20", gate="amphitheater")
    assert got["tickets"] == entries(fresh.of("amphitheater", JUNE_20))
    assert all(e["kind"] == "amphitheater" for e in got["tickets"])
    assert not set(e["id"] for e in got["tickets"]) & {t.id for t in fresh.of(
        "festival_day", JUNE_20)}


async def test_a_device_with_only_the_bundle_verifies_every_ticket_offline(
        api: httpx.AsyncClient, settings: Settings, fresh: Sold) -> None:
    for day in ("2027-06-19", "2027-06-20", "2027-06-21"):
        got = await bundle(api, settings, event_date=day, gate="festival")
        key = got["public_key"]
        listed = {e["id"]: e for e in got["tickets"]}
        for t in fresh.tickets:
            claims = device_verify(t.qr_payload, key)
            assert claims == {"c": t.code, "t": t.id, "k": t.kind,
                              "d": t.event_date.isoformat()}, t
            if t.event_date.isoformat() == day:
                entry = listed[claims["t"]]
                assert (entry["code"], entry["kind"]) == (claims["c"], claims["k"])
    # and it refuses what the issuer did not sign
    t = fresh.amph()
    stranger = Signer(Ed25519PrivateKey.generate()).sign(ticket_claims(
        code=t.code, ticket_id=t.id, kind=t.kind, event_date=t.event_date.isoformat()))
    head = t.qr_payload.rsplit(".", 1)[0]
    for fake in (stranger, f"{head}.{fresh.fest().qr_payload.rsplit('.', 1)[1]}",
                 t.qr_payload.replace("AMPHI1.", "AMPHI2."), t.code):
        assert device_verify(fake, key) is None, fake


async def test_the_bundle_defaults_to_the_venues_today(
        api: httpx.AsyncClient, settings: Settings, fresh: Sold, clock: Clock) -> None:
    clock.set(datetime(2027, 6, 20, 5, 0, tzinfo=UTC))  # 22:00 on June 19 in Los Angeles
    got = await bundle(api, settings, gate="amphitheater")
    assert got["event_date"] == "2027-06-19"
    assert got["tickets"] == entries(fresh.of("amphitheater", JUNE_19))
    assert datetime.fromisoformat(got["generated_at"]) == clock.now


async def test_the_bundle_says_when_the_gate_allows_re_entry(
        open_scan_api, settings: Settings) -> None:
    async with open_scan_api(scan_reentry_gates=("festival",)) as api:
        assert (await bundle(api, settings, event_date="2027-06-19", gate="festival"))["reentry"]
        assert not (await bundle(api, settings, event_date="2027-06-19",
                                 gate="amphitheater"))["reentry"]


@pytest.mark.parametrize("params", [
    {"event_date": "2027-06-19"}, {"event_date": "2027-06-19", "gate": "vip"},
    {"event_date": "19/06/2027", "gate": "festival"},
    {"event_date": "2027-02-30", "gate": "festival"}])
async def test_a_bad_bundle_request_is_refused(api: httpx.AsyncClient, settings: Settings,
                                              params: dict[str, str]) -> None:
    refused(await api.get(BUNDLE, params=params, headers=staff(settings)), 422)


# -- sync ---------------------------------------------------------------------------------------
async def test_a_batch_out_of_time_order_is_applied_in_time_order(
        api: httpx.AsyncClient, settings: Settings, fresh: Sold, clock: Clock,
        ledger_engine: Engine) -> None:
    amph, fest = fresh.amph(JUNE_19), fresh.fest(JUNE_19)
    clock.set(la(JUNE_19, 23))  # the device syncs later; its scans keep their own times
    scans = [
        item(amph.qr_payload, "amphitheater", la(JUNE_19, 18, 10), admitted=True),
        # the earliest, in UTC with a Z: 18:00 in Los Angeles
        {**item(amph.code, "amphitheater", la(JUNE_19, 18)),
         "scanned_at": "2027-06-20T01:00:00Z"},
        item(amph.qr_payload, "amphitheater", la(JUNE_19, 18, 5), admitted=False),
        item(fest.qr_payload, "festival", la(JUNE_19, 17, 55), admitted=True),
        item(amph.code.lower(), "festival", la(JUNE_19, 18, 20), admitted=None),
    ]
    got = await sync(api, settings, scans)
    assert (got["device_id"], got["applied"], got["conflicts"]) == ("offline-7", 5, 1)
    results = got["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]  # in the order sent
    assert [r["result"] for r in results] == [
        "already_scanned", "admitted", "already_scanned", "admitted", "admitted"]
    assert [r["conflict"] for r in results] == [True, False, False, False, False]
    for r in (results[0], results[2]):
        assert "6:00 PM" in r["reason"] and "offline-7" in r["reason"], r
    assert results[4]["festival_access_granted"] is True
    assert [datetime.fromisoformat(r["scanned_at"]) for r in results] == [
        la(JUNE_19, 18, 10), la(JUNE_19, 18), la(JUNE_19, 18, 5), la(JUNE_19, 17, 55),
        la(JUNE_19, 18, 20)]
    rows = scan_rows(ledger_engine)
    assert [(r["scanned_at"], str(r["ticket_id"]), r["gate"], r["result"]) for r in rows] == [
        (la(JUNE_19, 17, 55), fest.id, "festival", "admitted"),
        (la(JUNE_19, 18), amph.id, "amphitheater", "admitted"),
        (la(JUNE_19, 18, 5), amph.id, "amphitheater", "already_scanned"),
        (la(JUNE_19, 18, 10), amph.id, "amphitheater", "already_scanned"),
        (la(JUNE_19, 18, 20), amph.id, "festival", "admitted"),
    ]
    assert {(r["source"], r["device_id"], r["venue_date"]) for r in rows} == {
        ("offline", "offline-7", JUNE_19)}


async def test_a_scan_the_device_admitted_and_the_server_refuses_is_a_conflict(
        api: httpx.AsyncClient, settings: Settings, fresh: Sold, clock: Clock,
        ledger_engine: Engine) -> None:
    amph, fest, void, sunday = (fresh.amph(JUNE_19), fresh.fest(JUNE_19),
                                fresh.amph(JUNE_19, 2), fresh.amph(JUNE_20))
    set_status(ledger_engine, void.id, "void")
    # an online gate admitted the ticket at 5:30 PM
    clock.set(la(JUNE_19, 17, 30))
    online = ok_data(await api.post(SCAN, json={"code": amph.code, "gate": "amphitheater",
                                                "device_id": "north-1"},
                                    headers=staff(settings)))
    assert online["result"] == "admitted"
    forged = Signer(Ed25519PrivateKey.generate()).sign(ticket_claims(
        code=fest.code, ticket_id=fest.id, kind=fest.kind, event_date="2027-06-19"))
    scans = [
        item(amph.qr_payload, "amphitheater", la(JUNE_19, 18), admitted=True),
        item(void.qr_payload, "amphitheater", la(JUNE_19, 18, 1), admitted=True),
        item(sunday.qr_payload, "amphitheater", la(JUNE_19, 18, 2), admitted=True),
        item(forged, "festival", la(JUNE_19, 18, 3), admitted=True),
        item(fest.qr_payload, "amphitheater", la(JUNE_19, 18, 4), admitted=True),
        item("AMPH-NOSUCHCODE", "festival", la(JUNE_19, 18, 5), admitted=True),
        item(void.code, "festival", la(JUNE_19, 18, 6), admitted=False),  # refused by both
        item(fest.qr_payload, "festival", la(JUNE_19, 18, 7), admitted=True),  # fine
    ]
    got = await sync(api, settings, scans)
    results = got["results"]
    assert [(r["result"], r["conflict"]) for r in results] == [
        ("already_scanned", True), ("voided", True), ("wrong_date", True),
        ("invalid_signature", True), ("wrong_gate", True), ("unknown_ticket", True),
        ("voided", False), ("admitted", False)]
    assert got["conflicts"] == 6
    assert "5:30 PM" in results[0]["reason"] and "north-1" in results[0]["reason"]
    assert results[3]["ticket"] is None
    rows = scan_rows(ledger_engine, "source = 'offline'")
    assert len(rows) == len(scans)
    assert rows[3]["ticket_id"] is None and rows[3]["result"] == "invalid_signature"


async def test_offline_scans_keep_the_venue_date_of_their_own_time(
        api: httpx.AsyncClient, settings: Settings, fresh: Sold, clock: Clock,
        ledger_engine: Engine) -> None:
    clock.set(la(JUNE_20, 12))  # synced the next day
    late = datetime(2027, 6, 20, 5, 30, tzinfo=UTC)  # 22:30 on June 19 in Los Angeles
    got = await sync(api, settings, [item(fresh.amph(JUNE_19).code, "amphitheater", late),
                                     item(fresh.amph(JUNE_20).code, "amphitheater", late)])
    assert [r["result"] for r in got["results"]] == ["admitted", "wrong_date"]
    assert [r["venue_date"] for r in scan_rows(ledger_engine)] == [JUNE_19, JUNE_19]


async def test_an_offline_device_following_the_bundle_agrees_with_the_server(
        api: httpx.AsyncClient, settings: Settings, fresh: Sold, clock: Clock,
        ledger_engine: Engine) -> None:
    """A gate device judges on its own from the bundle (signature, listed, issued, once),
    then syncs: the server reaches the same decisions, so nothing is a conflict."""
    set_status(ledger_engine, fresh.fest(JUNE_19, 1).id, "refunded")
    got = await bundle(api, settings, event_date="2027-06-19", gate="festival")
    key, listed = got["public_key"], {e["id"]: e for e in got["tickets"]}
    seen: set[str] = set()
    recorded = []
    queue = [*fresh.tickets, fresh.amph(JUNE_19), fresh.fest(JUNE_19, 2)]  # two come twice
    for n, t in enumerate(queue):
        claims = device_verify(t.qr_payload, key)
        entry = listed.get(claims["t"]) if claims else None
        ok = (entry is not None and entry["status"] == "issued" and claims["t"] not in seen)
        if ok:
            seen.add(claims["t"])
        recorded.append(item(t.qr_payload, "festival", la(JUNE_19, 19) + timedelta(seconds=n),
                             admitted=ok))
    synced = await sync(api, settings, recorded)
    assert synced["conflicts"] == 0, [r for r in synced["results"] if r["conflict"]]
    assert [r["can_enter"] for r in synced["results"]] == [s["admitted"] for s in recorded]
    assert Counter(r["admitted"] for r in scan_rows(ledger_engine))[True] == len(seen)


# -- bad batches --------------------------------------------------------------------------------
GOOD_AT = "2027-06-19T18:00:00-07:00"


def _bad_batches(code: str) -> dict[str, dict[str, Any]]:
    good = {"code": code, "gate": "festival", "scanned_at": GOOD_AT, "admitted": True}
    return {
        "scans-missing": {"device_id": "d"},
        "scans-not-a-list": {"device_id": "d", "scans": good},
        "scans-a-string": {"device_id": "d", "scans": "[]"},
        "scans-empty": {"device_id": "d", "scans": []},
        "naive-time": {"device_id": "d", "scans": [good, {**good,
                                                          "scanned_at": "2027-06-19T18:00:00"}]},
        "date-only": {"device_id": "d", "scans": [good, {**good, "scanned_at": "2027-06-19"}]},
        "no-time": {"device_id": "d", "scans": [good, {k: v for k, v in good.items()
                                                       if k != "scanned_at"}]},
        "not-a-time": {"device_id": "d", "scans": [good, {**good, "scanned_at": "6pm"}]},
        "epoch-number": {"device_id": "d", "scans": [good, {**good, "scanned_at": 1813708800}]},
        "bad-gate": {"device_id": "d", "scans": [good, {**good, "gate": "vip"}]},
        "no-code": {"device_id": "d", "scans": [good, {**good, "code": ""}]},
        "admitted-text": {"device_id": "d", "scans": [good, {**good, "admitted": "yes"}]},
        "item-not-object": {"device_id": "d", "scans": [good, code]},
        "year-one": {"device_id": "d", "scans": [good, {**good,
                                                        "scanned_at": "0001-01-01T03:00:00Z"}]},
        "overflows-utc": {"device_id": "d", "scans": [good, {
            **good, "scanned_at": "9999-12-31T23:59:59-01:00"}]},
        "nul-code": {"device_id": "d", "scans": [good, {**good, "code": "X\x00"}]},
        "nul-device": {"device_id": "d\x00", "scans": [good]},
        "no-device": {"scans": [good]},
        "blank-device": {"device_id": " ", "scans": [good]},
    }


@pytest.mark.parametrize("case", list(_bad_batches("X")))
async def test_a_bad_batch_is_refused_whole_and_nothing_is_logged(
        case: str, api: httpx.AsyncClient, settings: Settings, fresh: Sold,
        ledger_engine: Engine) -> None:
    body = _bad_batches(fresh.fest(JUNE_19).qr_payload)[case]
    refused(await api.post(SYNC, json=body, headers=staff(settings)), 422)
    assert scan_count(ledger_engine) == 0


@pytest.mark.parametrize(("content", "status"), [(b"not json", 400), (b"[]", 400), (b"", 400)])
async def test_a_sync_body_that_is_not_a_json_object_is_refused(
        content: bytes, status: int, api: httpx.AsyncClient, settings: Settings, fresh: Sold,
        ledger_engine: Engine) -> None:
    refused(await api.post(SYNC, content=content, headers={
        **staff(settings), "Content-Type": "application/json"}), status)
    assert scan_count(ledger_engine) == 0


async def test_more_than_1000_scans_is_refused_and_nothing_is_logged(
        open_scan_api, settings: Settings, fresh: Sold, ledger_engine: Engine) -> None:
    """The count rule on its own (a body cap big enough not to be what refuses)."""
    code = fresh.fest(JUNE_19).code
    scans = [{"code": code, "gate": "festival", "scanned_at": GOOD_AT}] * 1001
    async with open_scan_api(max_body_bytes=1_000_000) as api:
        error = refused(await api.post(SYNC, json={"device_id": "d", "scans": scans},
                                       headers=staff(settings)), 422)
    assert "1000" in error["message"]
    assert scan_count(ledger_engine) == 0


async def test_a_batch_of_a_few_hundred_signed_scans_is_accepted(
        api: httpx.AsyncClient, settings: Settings, fresh: Sold, ledger_engine: Engine) -> None:
    """The sync takes 1-1000 scans, but the app-wide body cap (MAX_BODY_BYTES, 16 KiB by
    default, enforced by api/inputs.py json_body) refuses any batch of more than about 50
    signed payloads (~230 characters each) with 413: an offline gate that admitted a few
    hundred fans cannot sync them."""
    tickets = fresh.of("amphitheater", JUNE_19) + fresh.of("festival_day", JUNE_19)
    scans = [item(tickets[n % len(tickets)].qr_payload, "festival",
                  la(JUNE_19, 17) + timedelta(seconds=n)) for n in range(200)]
    got = await sync(api, settings, scans)
    assert got["applied"] == 200
    assert sum(r["can_enter"] for r in got["results"]) == len(tickets)
    assert scan_count(ledger_engine) == 200


# -- sync against scans already in the ledger --------------------------------------------------
async def test_an_offline_admission_before_an_online_one_is_not_a_second_silent_entry(
        api: httpx.AsyncClient, settings: Settings, fresh: Sold, clock: Clock,
        ledger_engine: Engine) -> None:
    """An online gate admitted the ticket at 6 PM; later an offline device syncs its own
    admission of the same ticket at the same gate at 5:50 PM. The ticket went in twice
    (no re-entry at this gate), yet the ledger records two admissions and the sync reports
    no conflict: ledger/scans.py `earlier_admission` only looks at admissions at or before
    the synced scan's time."""
    amph = fresh.amph(JUNE_19)
    clock.set(la(JUNE_19, 18))
    online = ok_data(await api.post(SCAN, json={"code": amph.code, "gate": "amphitheater",
                                                "device_id": "north-1"},
                                    headers=staff(settings)))
    assert online["result"] == "admitted"
    got = await sync(api, settings, [item(amph.qr_payload, "amphitheater",
                                          la(JUNE_19, 17, 50), admitted=True)])
    admitted = [r for r in scan_rows(ledger_engine) if r["admitted"]]
    assert got["conflicts"] == 1 or len(admitted) == 1, (
        f"{len(admitted)} admissions at one gate, {got['conflicts']} conflicts reported")


async def test_a_scan_the_device_refused_is_not_recorded_as_an_admission(
        api: httpx.AsyncClient, settings: Settings, fresh: Sold, clock: Clock,
        ledger_engine: Engine) -> None:
    """An offline device refused a ticket (e.g. bought after its bundle was downloaded) and
    sent the fan to the box office. The sync re-judges that scan and logs it as an
    admission (admitted=true), so when the fan comes back to an online gate the ticket is
    refused as "Already scanned at 5:00 PM": api/scan.py `sync` ignores the device's own
    `admitted: false`."""
    amph = fresh.amph(JUNE_19)
    got = await sync(api, settings, [item(amph.qr_payload, "amphitheater", la(JUNE_19, 17),
                                          admitted=False)])
    assert got["conflicts"] == 0
    clock.set(la(JUNE_19, 17, 30))
    back = ok_data(await api.post(SCAN, json={"code": amph.code, "gate": "amphitheater",
                                              "device_id": "box-office-gate"},
                                  headers=staff(settings)))
    assert back["result"] == "admitted", back
