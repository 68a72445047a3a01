"""Accessible seating in a real browser (see test_journeys.py): a fan who needs a wheelchair
space asks for one and holds it with its companion seat, the seat map shows the spaces as
set aside (never pickable), and a fan asking when every space is taken is told so.

Mezzanine Left (rows A-T, 30 seats a row) gets two pairs before the app starts, as the
admin would set them: T1+T2 and T30+T29 (space first, then its companion seat). Both are
as near the row's centre, so the leftmost comes first: T1 and T2."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import Engine

from amphi.settings import Settings
from tests.api._support import BASE, DAY, VenueFixture, set_accessible_seats
from tests.web._support import look
from tests.web.conftest import _serve

LONG = 15_000  # ms: what a journey waits at most for a screen
SEAT_TEXT = re.compile(r"Row [A-Z]+, Seat \d+")
SECTION = "Mezzanine Left"
OTHER_FAN = {"X-Guest-Id": "another-fan-0123456789"}


@pytest.fixture
def accessible_server(settings: Settings, venue: VenueFixture, ledger_engine: Engine,
                      redis_client: redis.Redis, tmp_path: Path) -> Iterator[str]:
    """The app (as `server`) with wheelchair spaces in Mezzanine Left: set before it starts,
    since the app loads its catalogue at start."""
    set_accessible_seats(ledger_engine, redis_client, venue, SECTION, "T1+T2, T30+T29")
    yield from _serve(settings, tmp_path)


def choose_section(page: Page, url: str) -> Locator:
    """The date's map with Mezzanine Left chosen: its button in the list."""
    page.goto(f"{url}/#/date/{DAY}")
    section = page.get_by_role("button", name=re.compile(SECTION))
    expect(section).to_be_visible(timeout=LONG)
    section.click()
    expect(page.get_by_role("heading", name=SECTION, exact=True)).to_be_visible()
    return section


def seat(page: Page, name: str) -> Locator:
    # exact: "Row T, Seat 1" is also the start of "Row T, Seat 10"
    return page.get_by_role("button", name=name, exact=True)


def test_a_fan_holds_a_wheelchair_space_and_its_companion_seat(
        page: Page, accessible_server: str) -> None:
    section = choose_section(page, accessible_server)
    expect(section).to_contain_text("2 wheelchair spaces free")
    need = page.get_by_label("I need wheelchair spaces")
    expect(need).to_have_accessible_description("2 wheelchair spaces free")  # in the panel
    need.check()
    # the quantity now counts spaces, each with its companion seat unless unticked
    expect(page.get_by_label("With a companion seat beside each")).to_be_checked()
    spaces = page.get_by_label("Wheelchair spaces", exact=True)
    expect(spaces.locator("option")).to_have_text(["1", "2", "3", "4"])
    spaces.select_option("1")
    expect(page.get_by_text(
        "1 wheelchair space and 1 companion seat: 2 \N{MULTIPLICATION SIGN} $75.00 = $150.00")
    ).to_be_visible()
    page.get_by_role("button", name="Find seats").click()

    expect(page.get_by_role("heading", name="Your seats", exact=True)).to_be_visible(timeout=LONG)
    # the space (T1) and its companion seat beside it (T2)
    expect(page.get_by_text(SEAT_TEXT)).to_have_text(["Row T, Seat 1", "Row T, Seat 2"])
    expect(page.get_by_text("Includes 1 wheelchair space with its companion seat")).to_be_visible()
    expect(page.get_by_text("Total: $150.00")).to_be_visible()
    look(page, "accessible-hold")
    guest = page.evaluate("localStorage.getItem('amphi.guest')")
    mine = httpx.get(f"{accessible_server}{BASE}/holds/", headers={"X-Guest-Id": guest})
    assert mine.status_code == 200, mine.text
    [hold] = mine.json()["data"]
    assert hold["accessible"] == 1
    assert hold["seats"] == [{"row": "T", "seat": 1}, {"row": "T", "seat": 2}]


def test_the_seat_map_shows_wheelchair_spaces_that_cannot_be_picked(
        page: Page, accessible_server: str) -> None:
    choose_section(page, accessible_server)
    page.get_by_label("I need wheelchair spaces").check()
    page.get_by_role("button", name="Pick seats on the map").click()

    space = seat(page, "Row T, Seat 1, wheelchair space")
    expect(space).to_be_disabled(timeout=LONG)
    expect(seat(page, "Row T, Seat 2, companion seat")).to_be_disabled()
    expect(seat(page, "Row T, Seat 30, wheelchair space")).to_be_disabled()
    expect(seat(page, "Row T, Seat 29, companion seat")).to_be_disabled()
    expect(seat(page, "Row T, Seat 3")).to_be_enabled()  # the rest of the row is on sale
    expect(page.get_by_text("596 of 600 seats free, and 2 wheelchair spaces")).to_be_visible()
    expect(page.get_by_text(re.compile("cannot be picked here"))).to_be_visible()
    look(page, "accessible-map")

    space.click(force=True)  # a click on it anyway picks nothing
    expect(space).to_have_attribute("aria-pressed", "false")
    expect(page.get_by_text("No seats picked yet.")).to_be_visible()
    expect(page.get_by_role("button", name="Hold picked seats")).to_be_disabled()


def test_every_wheelchair_space_taken(page: Page, accessible_server: str,
                                      venue: VenueFixture) -> None:
    # another fan holds both spaces, with their companion seats
    other = httpx.post(f"{accessible_server}{BASE}/holds/create/", json={
        "section_id": venue.sections[SECTION], "event_date": DAY, "accessible": 2},
        headers=OTHER_FAN)
    assert other.status_code == 201, other.text
    assert len(other.json()["data"]["seats"]) == 4

    section = choose_section(page, accessible_server)
    expect(section).to_contain_text("No wheelchair spaces free", timeout=LONG)
    page.get_by_label("I need wheelchair spaces").check()
    page.get_by_role("button", name="Find seats").click()

    expect(page.get_by_role("alert")).to_have_text(
        "No wheelchair spaces are free in this section right now. "
        "Please choose another section.", timeout=LONG)
    expect(page.get_by_role("heading", name="Choose your seats")).to_be_visible()
    guest = page.evaluate("localStorage.getItem('amphi.guest')")
    mine = httpx.get(f"{accessible_server}{BASE}/holds/", headers={"X-Guest-Id": guest})
    assert mine.status_code == 200, mine.text
    assert mine.json()["data"] == []
