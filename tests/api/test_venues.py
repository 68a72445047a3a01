"""The read side: venues, event dates and sections with live counters (seed contract)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import httpx

from amphi.venue_time import venue_today
from tests.api._support import (
    BASE,
    DAY,
    EVENT_DAYS,
    SECTION_FIELDS,
    SEED_SECTIONS,
    assert_error,
    data,
    hold_body,
    sections,
)


async def test_venues_list_the_pacific_amphitheatre(api: httpx.AsyncClient, venue) -> None:
    venues = data(await api.get(f"{BASE}/venues/"))
    assert len(venues) == 1
    (only,) = venues
    assert only["id"] == venue.id
    assert only["name"] == "Pacific Amphitheatre"
    assert only["capacity"] == 8500
    assert only["timezone"] == "America/Los_Angeles"


async def test_event_dates_are_objects_with_date(api: httpx.AsyncClient, venue) -> None:
    days = data(await api.get(f"{BASE}/event-dates/"))
    assert [d["date"] for d in days] == EVENT_DAYS
    assert all(d["venue_id"] == venue.id for d in days)
    assert days[0]["day_name"] == "Saturday"


async def test_event_dates_leave_out_days_that_are_over(open_api, add_event_date) -> None:
    today = venue_today("America/Los_Angeles")
    add_event_date(today - timedelta(days=1))  # ended at midnight, venue time
    add_event_date(date(2020, 6, 19))
    add_event_date(today)  # still on sale until the day ends
    async with open_api() as api:  # a new app loads the catalogue again
        days = [d["date"] for d in data(await api.get(f"{BASE}/event-dates/"))]
    assert days == [today.isoformat(), *EVENT_DAYS]


async def test_sections_match_the_seed(api: httpx.AsyncClient, venue) -> None:
    rows = data(await api.get(f"{BASE}/venues/{venue.id}/sections/",
                              params={"event_date": DAY}))
    assert len(rows) == 8
    for row, (name, price, capacity, kind) in zip(rows, SEED_SECTIONS, strict=True):
        assert set(row) >= SECTION_FIELDS, SECTION_FIELDS - set(row)
        assert row["name"] == name
        assert row["price"] == price
        assert row["capacity"] == capacity
        assert row["section_type"] == kind
        assert row["id"] == venue.sections[name]
        assert (row["available_seats"], row["held_seats"], row["sold_seats"]) == (capacity, 0, 0)
        assert isinstance(row["map_coordinates"], dict) and row["map_coordinates"]
        assert row["map_color"].startswith("#")
    assert [r["display_order"] for r in rows] == sorted(r["display_order"] for r in rows)
    assert sum(r["capacity"] for r in rows) == 8500


async def test_sections_default_to_the_first_day_on_sale(api: httpx.AsyncClient, venue) -> None:
    hold = data(await api.post(f"{BASE}/holds/create/",
                               json=hold_body(venue.sections["Terrace"], 3, EVENT_DAYS[0])), 201)
    rows = data(await api.get(f"{BASE}/venues/{venue.id}/sections/"))
    terrace = next(r for r in rows if r["name"] == "Terrace")
    assert terrace["held_seats"] == hold["quantity"] == 3


async def test_counters_follow_a_hold_and_its_release(api: httpx.AsyncClient, venue) -> None:
    before = await sections(api, venue.id)
    other_day = await sections(api, venue.id, EVENT_DAYS[1])
    hold = data(await api.post(f"{BASE}/holds/create/",
                               json=hold_body(venue.sections["Orchestra Center"], 4)), 201)

    during = await sections(api, venue.id)
    oc = during["Orchestra Center"]
    assert (oc["available_seats"], oc["held_seats"], oc["sold_seats"]) == (1496, 4, 0)
    for name in before:
        if name != "Orchestra Center":
            assert during[name] == before[name]
    assert await sections(api, venue.id, EVENT_DAYS[1]) == other_day

    lawn = data(await api.post(f"{BASE}/holds/create/",
                               json=hold_body(venue.sections["Lawn"], 5)), 201)
    assert (await sections(api, venue.id))["Lawn"]["held_seats"] == 5

    data(await api.post(f"{BASE}/holds/{hold['hold_id']}/release/"))
    data(await api.post(f"{BASE}/holds/{lawn['hold_id']}/release/"))
    assert await sections(api, venue.id) == before


async def test_sections_refuse_unknown_venue_and_dates(
    open_api, venue, add_event_date
) -> None:
    add_event_date(date(2020, 6, 19))
    async with open_api() as api:
        url = f"{BASE}/venues/{venue.id}/sections/"
        assert_error(await api.get(f"{BASE}/venues/{uuid.uuid4()}/sections/"), 404,
                     "venue_not_found")
        assert_error(await api.get(f"{BASE}/venues/pacific/sections/"), 422)
        assert_error(await api.get(url, params={"event_date": "June 19"}), 422)
        assert_error(await api.get(url, params={"event_date": "2027-07-04"}), 404,
                     "event_date_not_found")
        assert_error(await api.get(url, params={"event_date": "2020-06-19"}), 410,
                     "event_date_past")
