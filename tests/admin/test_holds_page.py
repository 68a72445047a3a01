"""The active holds page lists what Redis holds, and its release frees the seats at once."""

from __future__ import annotations

import httpx

from amphi.settings import Settings
from tests.admin._support import ORIGIN, cells, table_body
from tests.api._support import BASE, DAY, VenueFixture, bearer, data, hold_body, sections


async def test_holds_page_lists_active_holds(admin: httpx.AsyncClient, venue: VenueFixture,
                                             api_settings: Settings) -> None:
    guest = data(await admin.post(f"{BASE}/holds/create/",
                                  json=hold_body(venue.sections["Orchestra Center"], 2)), 201)
    fan = data(await admin.post(f"{BASE}/holds/create/",
                                json=hold_body(venue.sections["Lawn"], 3, day="2027-06-20"),
                                headers=bearer(api_settings.jwt_secret, "fan-42")), 201)
    page = await admin.get("/admin/seat-hold")
    rows = table_body(page)
    assert guest["hold_id"] in rows and fan["hold_id"] in rows
    row = cells(page)
    seats = ", ".join(f'{s["row"]}{s["seat"]}' for s in guest["seats"])
    assert seats in row and "Orchestra Center" in row and DAY in row and "$250.00" in row
    assert "fan-42" in row and "general admission" in row and "$135.00" in row

    only_lawn = table_body(await admin.get("/admin/seat-hold", params={"section": "Lawn"}))
    assert fan["hold_id"] in only_lawn and guest["hold_id"] not in only_lawn
    by_owner = table_body(await admin.get("/admin/seat-hold", params={"search": "fan-42"}))
    assert fan["hold_id"] in by_owner and guest["hold_id"] not in by_owner
    by_day = table_body(await admin.get("/admin/seat-hold", params={"event_date": DAY}))
    assert guest["hold_id"] in by_day and fan["hold_id"] not in by_day


async def test_release_frees_the_seats(admin: httpx.AsyncClient, venue: VenueFixture,
                                       api_settings: Settings) -> None:
    section = venue.sections["Mezzanine Center"]
    # A signed-in fan's hold: the box office releases it although it is not theirs.
    hold = data(await admin.post(f"{BASE}/holds/create/", json=hold_body(section, 4),
                                 headers=bearer(api_settings.jwt_secret, "fan-7")), 201)
    before = (await sections(admin, venue.id))["Mezzanine Center"]
    assert (before["available_seats"], before["held_seats"]) == (1196, 4)

    resp = await admin.post("/admin/seat-hold/release", data={"hold_id": hold["hold_id"]},
                            headers=ORIGIN)
    assert resp.status_code == 303
    assert resp.headers["location"].endswith(f"/admin/seat-hold?released={hold['hold_id']}")

    after = (await sections(admin, venue.id))["Mezzanine Center"]
    assert (after["available_seats"], after["held_seats"]) == (1200, 0)
    released = data(await admin.get(f"{BASE}/holds/{hold['hold_id']}/"))
    assert released["status"] == "released"
    page = await admin.get(resp.headers["location"])
    assert "released" in page.text and hold["hold_id"] not in table_body(page)
    # The freed seats sell again: the next hold gets the same best seats.
    again = data(await admin.post(f"{BASE}/holds/create/", json=hold_body(section, 4)), 201)
    assert again["seats"] == hold["seats"]

    # Releasing it twice, or a hold that does not exist, is refused and changes nothing.
    twice = await admin.post("/admin/seat-hold/release", data={"hold_id": hold["hold_id"]},
                             headers=ORIGIN)
    assert twice.status_code == 303 and "refused=" in twice.headers["location"]
    unknown = await admin.post("/admin/seat-hold/release", data={"hold_id": "not-a-hold"},
                               headers=ORIGIN)
    assert unknown.status_code == 303 and "refused=" in unknown.headers["location"]
    final = (await sections(admin, venue.id))["Mezzanine Center"]
    assert (final["available_seats"], final["held_seats"]) == (1196, 4)
