"""An edit in the admin reaches the hot path at once: the next hold gets the new price, and
a deactivated block sells nothing, without waiting for the catalogue refresh."""

from __future__ import annotations

import httpx
import redis
from sqlalchemy import Engine

from tests.admin._support import ORIGIN, block_id, ledger_snapshot
from tests.api._support import BASE, DAY, VenueFixture, assert_error, data, hold_body


async def _edit_block(admin: httpx.AsyncClient, pk: str, **form: str) -> None:
    resp = await admin.post(f"/admin/seat-block/edit/{pk}", data=form, headers=ORIGIN)
    assert resp.status_code == 302, resp.text


async def test_price_edit_changes_the_next_holds_price(
    admin: httpx.AsyncClient, venue: VenueFixture, ledger_engine: Engine
) -> None:
    section = venue.sections["Orchestra Center"]
    before = data(await admin.post(f"{BASE}/holds/create/", json=hold_body(section, 1)), 201)
    assert before["price_per_ticket"] == 125.0

    await _edit_block(admin, block_id(ledger_engine, "Orchestra Center", DAY),
                      price_cents_override="150.50", is_active="y")

    blocks = ledger_snapshot(ledger_engine)["blocks"]
    assert 15050 in [b[2] for b in blocks]  # the ledger has it ...
    after = data(await admin.post(f"{BASE}/holds/create/", json=hold_body(section, 2)), 201)
    assert after["price_per_ticket"] == 150.5  # ... and so does the very next hold
    assert after["total_price"] == 301.0
    # The other dates of the section keep the section's price.
    other = data(await admin.post(f"{BASE}/holds/create/",
                                  json=hold_body(section, 1, day="2027-06-20")), 201)
    assert other["price_per_ticket"] == 125.0
    # Clearing the override goes back to the section's price.
    await _edit_block(admin, block_id(ledger_engine, "Orchestra Center", DAY),
                      price_cents_override="", is_active="y")
    again = data(await admin.post(f"{BASE}/holds/create/", json=hold_body(section, 1)), 201)
    assert again["price_per_ticket"] == 125.0


async def test_section_price_edit_reaches_every_date(
    admin: httpx.AsyncClient, venue: VenueFixture, ledger_engine: Engine
) -> None:
    section = venue.sections["Lawn"]
    resp = await admin.post(f"/admin/section/edit/{section}", headers=ORIGIN, data={
        "name": "Lawn", "price_cents": "49.99", "display_order": "8",
        "map_color": "#00aa00", "map_coordinates": "{}", "is_active": "y",
    })
    assert resp.status_code == 302, resp.text
    for day in ("2027-06-19", "2027-06-21"):
        hold = data(await admin.post(f"{BASE}/holds/create/",
                                     json=hold_body(section, 1, day=day)), 201)
        assert hold["price_per_ticket"] == 49.99, day


async def test_deactivating_a_block_stops_new_holds(
    admin: httpx.AsyncClient, venue: VenueFixture, ledger_engine: Engine,
    redis_client: redis.Redis,
) -> None:
    section = venue.sections["Terrace"]
    pk = block_id(ledger_engine, "Terrace", DAY)
    data(await admin.post(f"{BASE}/holds/create/", json=hold_body(section, 1)), 201)

    await _edit_block(admin, pk, price_cents_override="")  # is_active unticked

    assert_error(await admin.post(f"{BASE}/holds/create/", json=hold_body(section, 1)),
                 409, "not_on_sale")
    assert redis_client.hget(venue.specs[f"{DAY}|terrace"].block.meta, "active") == b"0"
    # Other dates of the section still sell.
    data(await admin.post(f"{BASE}/holds/create/",
                          json=hold_body(section, 1, day="2027-06-20")), 201)
    # Reactivating puts it back on sale at once.
    await _edit_block(admin, pk, price_cents_override="", is_active="y")
    data(await admin.post(f"{BASE}/holds/create/", json=hold_body(section, 1)), 201)


async def test_accessible_seats_saved_in_the_admin_are_withheld_at_once(
    admin: httpx.AsyncClient, venue: VenueFixture, ledger_engine: Engine,
    redis_client: redis.Redis,
) -> None:
    section = venue.sections["Mezzanine Right"]  # 20 rows of 30
    form = {"name": "Mezzanine Right", "price_cents": "75.00", "display_order": "6",
            "map_color": "#4895EF", "map_coordinates": "{}", "is_active": "y"}
    url = f"/admin/section/edit/{section}"
    refused = await admin.post(url, headers=ORIGIN, data={**form, "accessible_seats": "T1+T3"})
    assert refused.status_code == 400 and "beside the space" in refused.text

    saved = await admin.post(url, headers=ORIGIN, data={**form, "accessible_seats": " t2+t1 "})
    assert saved.status_code == 302, saved.text
    details = await admin.get(f"/admin/section/details/{section}")
    assert "T2+T1" in details.text  # written the one way
    for day in ("2027-06-19", "2027-06-21"):
        assert redis_client.getrange(venue.specs[f"{day}|mezz-right"].block.seats, 570, 571) \
            == b"CW", day
    # the API process that saved it serves it at once
    hold = data(await admin.post(f"{BASE}/holds/create/", json={
        "section_id": section, "event_date": DAY, "accessible": 1}), 201)
    assert hold["seats"] == [{"row": "T", "seat": 1}, {"row": "T", "seat": 2}]

    # the box office releases them for one date
    await _edit_block(admin, block_id(ledger_engine, "Mezzanine Right", "2027-06-20"),
                      price_cents_override="", is_active="y", accessible_released="y")
    assert redis_client.getrange(venue.specs["2027-06-20|mezz-right"].block.seats, 570, 571) \
        == b"00"
    assert redis_client.getrange(venue.specs["2027-06-21|mezz-right"].block.seats, 570, 571) \
        == b"CW"
