"""With the box office login, every admin page renders what the ledger and Redis hold, and
what the ledger owns cannot be created, edited or deleted."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import Engine

from tests.admin._support import (
    LIST_PAGES,
    ORIGIN,
    block_id,
    cells,
    ledger_snapshot,
    record_sale,
    table_body,
)
from tests.api._support import BASE, DAY, VenueFixture, data, hold_body


@pytest.mark.parametrize("identity", sorted(LIST_PAGES))
async def test_list_pages_render(admin: httpx.AsyncClient, ledger_engine: Engine,
                                 identity: str) -> None:
    record_sale(ledger_engine)
    resp = await admin.get(f"/admin/{identity}/list")
    assert resp.status_code == 200, resp.text
    for text in LIST_PAGES[identity]:
        assert text in resp.text, (identity, text)


async def test_index_and_menu(admin: httpx.AsyncClient) -> None:
    resp = await admin.get("/admin/")
    assert resp.status_code == 200
    for link in ["/admin/venue/list", "/admin/seat-block/list", "/admin/seat-hold",
                 "/admin/amphitheater-ticket/list", "/admin/scan/list"]:
        assert link in resp.text, link


async def test_seat_block_list_shows_live_counters(admin: httpx.AsyncClient,
                                                   venue: VenueFixture) -> None:
    data(await admin.post(f"{BASE}/holds/create/",
                          json=hold_body(venue.sections["Orchestra Left"], 3)), 201)
    resp = await admin.get("/admin/seat-block/list",
                           params={"search": "Orchestra Left", "event_date": DAY})
    assert resp.status_code == 200
    # Orchestra Left holds 800: 797 available, 3 held, none sold, read from Redis.
    row = cells(resp)
    assert "797" in row and "3" in row and "800" not in row, row
    pk = resp.text.split("/admin/seat-block/details/")[1].split('"')[0]
    details = await admin.get(f"/admin/seat-block/details/{pk}")
    assert details.status_code == 200 and "797" in cells(details), cells(details)


async def test_search_and_filters(admin: httpx.AsyncClient, ledger_engine: Engine) -> None:
    sale = record_sale(ledger_engine)
    found = await admin.get("/admin/amphitheater-ticket/list",
                            params={"search": sale.ticket_codes[1]})
    rows = table_body(found)
    assert sale.ticket_codes[1] in rows and sale.ticket_codes[0] not in rows
    by_status = await admin.get("/admin/order/list", params={"status": "completed"})
    assert sale.order_number in table_body(by_status)
    none = await admin.get("/admin/order/list", params={"status": "refunded"})
    assert sale.order_number not in table_body(none)
    lawn = await admin.get("/admin/section/list", params={"section_type": "general_admission"})
    assert "Lawn" in table_body(lawn) and "Terrace" not in table_body(lawn)
    one_day = table_body(await admin.get("/admin/seat-block/list",
                                         params={"event_date": "2027-06-20"}))
    assert "2027-06-20" in one_day and "2027-06-19" not in one_day
    assert one_day.count("<tr") == 8  # one block a section


async def test_ticket_details_show_festival_pass(admin: httpx.AsyncClient,
                                                 ledger_engine: Engine) -> None:
    sale = record_sale(ledger_engine)
    page = await admin.get("/admin/amphitheater-ticket/list",
                           params={"search": sale.ticket_codes[0]})
    row = table_body(page)
    assert sale.pass_codes[0] in row and sale.pass_codes[1] not in row


@pytest.mark.parametrize("identity", ["amphitheater-ticket", "ticket", "stripe-event", "scan",
                                      "ticket-transfer"])
async def test_ledger_records_are_read_only(admin: httpx.AsyncClient, ledger_engine: Engine,
                                            identity: str) -> None:
    record_sale(ledger_engine)
    before = ledger_snapshot(ledger_engine)
    assert (await admin.get(f"/admin/{identity}/create")).status_code == 403
    created = await admin.post(f"/admin/{identity}/create", data={"code": "X"}, headers=ORIGIN)
    assert created.status_code == 403
    listing = await admin.get(f"/admin/{identity}/list")
    assert f"/admin/{identity}/edit/" not in listing.text
    assert f"/admin/{identity}/create" not in listing.text
    pk = listing.text.split(f"/admin/{identity}/details/")[1].split('"')[0]
    assert (await admin.get(f"/admin/{identity}/edit/{pk}")).status_code == 403
    edited = await admin.post(f"/admin/{identity}/edit/{pk}", data={"code": "X"}, headers=ORIGIN)
    assert edited.status_code == 403
    deleted = await admin.delete(f"/admin/{identity}/delete", params={"pks": pk}, headers=ORIGIN)
    assert deleted.status_code == 403
    assert ledger_snapshot(ledger_engine) == before


async def test_edit_form_offers_only_editable_fields(admin: httpx.AsyncClient,
                                                     ledger_engine: Engine,
                                                     venue: VenueFixture) -> None:
    section_id = venue.sections["Terrace"]
    form = await admin.get(f"/admin/section/edit/{section_id}")
    assert form.status_code == 200
    assert 'name="price_cents"' in form.text and 'value="60.00"' in form.text
    for fixed in ("slug", "capacity", "rows", "seats_per_row", "section_type"):
        assert f'name="{fixed}"' not in form.text, fixed
    # Posting a fixed field anyway changes nothing of it.
    resp = await admin.post(f"/admin/section/edit/{section_id}", headers=ORIGIN, data={
        "name": "Terrace", "price_cents": "60.00", "display_order": "7",
        "map_color": "#123456", "map_coordinates": "{}", "is_active": "y",
        "slug": "hacked", "capacity": "1",
    })
    assert resp.status_code == 302, resp.text
    after = {s[0]: s for s in ledger_snapshot(ledger_engine)["sections"]}
    assert "hacked" not in after and after["terrace"][2] == 6000


async def test_order_total_is_read_only(admin: httpx.AsyncClient, ledger_engine: Engine) -> None:
    record_sale(ledger_engine)
    listing = await admin.get("/admin/order/list")
    order_id = listing.text.split("/admin/order/edit/")[1].split('"')[0]
    resp = await admin.post(f"/admin/order/edit/{order_id}", headers=ORIGIN, data={
        "buyer_email": "new@example.com", "buyer_first_name": "Ada",
        "buyer_last_name": "Byron", "total_cents": "1", "status": "refunded",
    })
    assert resp.status_code == 302, resp.text
    orders = ledger_snapshot(ledger_engine)["orders"]
    assert [o[1:] for o in orders] == [("new@example.com", "completed")]
    details = await admin.get(f"/admin/order/details/{order_id}")
    assert "$250.00" in details.text


async def test_block_edit_form_in_dollars(admin: httpx.AsyncClient,
                                          ledger_engine: Engine) -> None:
    pk = block_id(ledger_engine, "Orchestra Center", DAY)
    form = await admin.get(f"/admin/seat-block/edit/{pk}")
    assert form.status_code == 200
    assert 'name="price_cents_override"' in form.text and 'name="is_active"' in form.text
    before = ledger_snapshot(ledger_engine)
    bad = await admin.post(f"/admin/seat-block/edit/{pk}", headers=ORIGIN,
                           data={"price_cents_override": "12.345", "is_active": "y"})
    assert bad.status_code == 400 and "whole cents" in bad.text
    assert ledger_snapshot(ledger_engine) == before
