"""The fan's own choice, in a real browser (see test_journeys.py): seats picked one by one
on a section's seat map, a picked seat someone else takes first, and held seats found
again on the home page after a reload."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Locator, Page, expect

from tests.api._support import BASE, DAY, VenueFixture
from tests.web._support import look

LONG = 15_000  # ms: what a journey waits at most for a screen
SEAT_TEXT = re.compile(r"Row [A-Z]+, Seat \d+")


def display_of(url: str, day: str) -> str:
    dates = httpx.get(f"{url}{BASE}/event-dates/").json()["data"]
    return next(d["display"] for d in dates if d["date"] == day)


def open_seat_map(page: Page, url: str, section: str) -> None:
    page.goto(f"{url}/#/")
    page.get_by_role("link", name=display_of(url, DAY)).click()
    page.get_by_role("button", name=re.compile(section)).click()
    page.get_by_role("button", name="Pick seats on the map").click()


def seat(page: Page, row: str, number: int, *, taken: bool = False) -> Locator:
    # exact: "Row A, Seat 1" is also the start of "Row A, Seat 10" and "Row A, Seat 1, taken"
    name = f"Row {row}, Seat {number}" + (", taken" if taken else "")
    return page.get_by_role("button", name=name, exact=True)


def test_a_fan_picks_two_seats_on_the_map(page: Page, server: str) -> None:
    open_seat_map(page, server, "Orchestra Center")
    # at the end of the front row: not what best available would choose
    seat(page, "A", 1).click()
    seat(page, "A", 3).click()
    expect(seat(page, "A", 1)).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_text("2 seats picked: Row A Seat 1, Row A Seat 3")).to_be_visible()
    look(page, "pick-seats")
    page.get_by_role("button", name="Hold picked seats").click()

    expect(page.get_by_role("heading", name="Your seats", exact=True)).to_be_visible(timeout=LONG)
    expect(page.get_by_text(SEAT_TEXT)).to_have_text(["Row A, Seat 1", "Row A, Seat 3"])


def test_a_picked_seat_taken_meanwhile(page: Page, server: str, venue: VenueFixture) -> None:
    open_seat_map(page, server, "Orchestra Center")
    seat(page, "B", 10).click()
    expect(page.get_by_text("1 seat picked: Row B Seat 10")).to_be_visible()
    # another fan, quicker
    other = httpx.post(f"{server}{BASE}/holds/create/", json={
        "section_id": venue.sections["Orchestra Center"], "event_date": DAY,
        "seats": [{"row": "B", "seat": 10}]}, headers={"X-Guest-Id": "another-fan-0123456789"})
    assert other.status_code == 201, other.text
    page.get_by_role("button", name="Hold picked seats").click()

    expect(page.get_by_role("alert")).to_contain_text(
        "Someone else just took Row B, Seat 10. Pick other seats.")
    expect(seat(page, "B", 10, taken=True)).to_be_disabled(timeout=LONG)
    expect(page.get_by_role("button", name="Hold picked seats")).to_be_disabled()
    guest = page.evaluate("localStorage.getItem('amphi.guest')")
    mine = httpx.get(f"{server}{BASE}/holds/", headers={"X-Guest-Id": guest})
    assert mine.status_code == 200, mine.text
    assert mine.json()["data"] == []


def test_held_seats_are_found_again_after_a_reload(page: Page, server: str) -> None:
    page.goto(f"{server}/#/date/{DAY}")
    page.get_by_role("button", name=re.compile("Mezzanine Center")).click()
    page.get_by_label("Quantity").select_option("2")
    page.get_by_role("button", name="Find seats").click()
    expect(page.get_by_role("heading", name="Your seats", exact=True)).to_be_visible(timeout=LONG)
    expect(page.get_by_text(SEAT_TEXT)).to_have_count(2)
    seats = page.get_by_text(SEAT_TEXT).all_inner_texts()
    hold_url = page.url

    page.get_by_role("link", name="Buy tickets").click()
    page.reload()
    held = page.get_by_role("region", name="Your held seats")
    expect(held).to_contain_text("Mezzanine Center", timeout=LONG)
    expect(held).to_contain_text("; ".join(seats))
    expect(held).to_contain_text(re.compile(r"Time left: (9|10):\d\d"))
    look(page, "my-holds")
    held.get_by_role("link", name="Continue").click()

    expect(page).to_have_url(hold_url)
    expect(page.get_by_role("heading", name="Your seats", exact=True)).to_be_visible()
    expect(page.get_by_text(SEAT_TEXT)).to_have_text(seats)
