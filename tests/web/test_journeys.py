"""The fan app and the gate page in a real browser (Chromium, driven by Playwright), against
the real app over HTTP: the journeys of a fan at the on-sale and of a steward at a gate.
Each screen passes an axe-core check and is photographed for the docs (tests/web/_support)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import httpx
import redis
from playwright.sync_api import Page, expect

from amphi.settings import Settings
from amphi.waiting_room import RoomConfig
from api.auth import mint_token
from engine import waiting_room as rooms
from tests.api._support import DAY, VenueFixture
from tests.web._support import buy, look, sell_out

LONG = 15_000  # ms: what a journey waits at most for a screen


def display_of(url: str, day: str) -> str:
    dates = httpx.get(f"{url}/api/tickets/amphitheater/event-dates/").json()["data"]
    return next(d["display"] for d in dates if d["date"] == day)


def choose_seats(page: Page, url: str, section: str, quantity: int) -> None:
    page.goto(f"{url}/#/")
    page.get_by_role("link", name=display_of(url, DAY)).click()
    page.get_by_role("button", name=re.compile(section)).click()
    page.get_by_label("Quantity").select_option(str(quantity))
    page.get_by_role("button", name="Find seats").click()


def test_a_fan_buys_two_seats_and_sees_the_tickets(page: Page, server: str,
                                                     settings: Settings) -> None:
    token = mint_token(settings.jwt_secret, user_id="fan-web", email="fan@example.com")
    page.goto(f"{server}/#/tickets")
    expect(page.get_by_role("heading", name="My tickets")).to_be_visible()
    look(page, "sign-in")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("No tickets yet.")).to_be_visible()

    page.get_by_role("link", name="Buy tickets").click()
    expect(page.get_by_role("link", name=display_of(server, DAY))).to_be_visible()
    look(page, "dates")
    page.get_by_role("link", name=display_of(server, DAY)).click()
    expect(page.get_by_role("button", name=re.compile("Orchestra Center"))).to_be_visible()
    expect(page.get_by_role("img", name=re.compile("Seating map"))).to_be_visible()
    look(page, "map")
    page.get_by_role("button", name=re.compile("Orchestra Center")).click()
    page.get_by_label("Quantity").select_option("2")
    page.get_by_role("button", name="Find seats").click()

    expect(page.get_by_role("heading", name="Your seats")).to_be_visible()
    expect(page.get_by_role("timer")).to_contain_text(re.compile(r"Held for (9|10):\d\d"))
    expect(page.get_by_text(re.compile(r"Row [A-Z]+, Seat \d+"))).to_have_count(2)
    look(page, "hold")
    page.get_by_label("Email").fill("fan@example.com")
    page.get_by_label("First name").fill("Sam")
    page.get_by_label("Last name").fill("Lee")
    page.get_by_role("button", name="Continue to payment").click()
    expect(page.get_by_role("button", name="Pay (demo)")).to_be_visible()
    look(page, "pay")
    page.get_by_role("button", name="Pay (demo)").click()

    expect(page.get_by_role("heading", name="You're going!")).to_be_visible(timeout=LONG)
    expect(page.get_by_text(re.compile(r"ORD-\d+"))).to_be_visible()
    look(page, "done")
    page.get_by_role("link", name="See my tickets").click()
    tickets = page.get_by_role("article")
    expect(tickets).to_have_count(2)
    expect(page.get_by_role("img", name=re.compile("QR code for ticket AMPH-"))).to_have_count(2)
    expect(tickets.first).to_contain_text("Festival day pass: FEST-")
    look(page, "tickets")


# The page's layout shift (Cumulative Layout Shift's sum) not caused by the fan's own input.
LAYOUT_SHIFT = """window.__shift = 0;
new PerformanceObserver(list => {
  for (const e of list.getEntries()) if (!e.hadRecentInput) window.__shift += e.value;
}).observe({type: "layout-shift", buffered: true});"""


def test_a_sold_out_section_says_so(page: Page, server: str, venue: VenueFixture) -> None:
    page.add_init_script(LAYOUT_SHIFT)
    page.goto(f"{server}/#/")
    page.get_by_role("link", name=display_of(server, DAY)).click()
    page.get_by_role("button", name=re.compile("Lawn")).click()
    sell_out(server, venue.sections["Lawn"], DAY)  # meanwhile, the others take every place
    page.get_by_role("button", name="Find seats").click()
    expect(page.get_by_role("alert")).to_contain_text("Sold out")
    page.wait_for_timeout(600)  # past the fan's click: later shifts are the page's own
    before = page.evaluate("window.__shift")
    # the map learns it at its next poll: the section is shown sold out, and cannot be chosen
    lawn = page.get_by_role("button", name=re.compile("Lawn"))
    expect(lawn).to_contain_text("Sold out", timeout=LONG)
    expect(lawn).to_be_disabled()
    assert page.evaluate("window.__shift") - before < 0.01  # the update moved nothing
    look(page, "sold-out")


def test_the_map_works_from_the_keyboard(page: Page, server: str) -> None:
    page.goto(f"{server}/#/date/{DAY}")
    expect(page.get_by_role("button", name=re.compile("Mezzanine Left"))).to_be_visible()
    for _ in range(40):  # Tab through the page until the section's button has the focus
        page.keyboard.press("Tab")
        if "Mezzanine Left" in page.evaluate("document.activeElement.textContent"):
            break
    else:
        raise AssertionError("the section cannot be reached with Tab")
    page.keyboard.press("Enter")
    quantity = page.get_by_label("Quantity")
    quantity.focus()
    page.keyboard.press("ArrowDown")  # 1 -> 2
    expect(quantity).to_have_value("2")
    page.get_by_role("button", name="Find seats").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Your seats")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Row [A-Z]+, Seat \d+"))).to_have_count(2)


def test_a_hold_that_expires_on_screen(page: Page, short_hold_server: str) -> None:
    choose_seats(page, short_hold_server, "Terrace", 2)
    expect(page.get_by_role("heading", name="Your seats")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Your hold has expired", timeout=LONG)
    expect(page.get_by_role("button", name="Continue to payment")).to_be_disabled()
    look(page, "expired")
    page.get_by_role("link", name="Choose seats again").click()
    expect(page.get_by_role("button", name=re.compile("Terrace"))).to_be_visible()


def test_the_waiting_room_admits_a_fan(page: Page, server: str,
                                       redis_client: redis.Redis) -> None:
    seconds, micros = redis_client.time()
    now = datetime.fromtimestamp(seconds + micros / 1e6, UTC)
    rooms.configure(redis_client, RoomConfig(date.fromisoformat(DAY), now - timedelta(seconds=1),
                                             now + timedelta(seconds=4), 6000, 0, 900))
    page.goto(f"{server}/#/")
    page.get_by_role("link", name=display_of(server, DAY)).click()
    expect(page.get_by_role("heading", name="You're in line")).to_be_visible()
    look(page, "waiting-room")
    # drawn at the start, admitted at once: the map, and a hold with the admission token
    expect(page.get_by_text("It's your turn!")).to_be_visible(timeout=LONG)
    page.get_by_role("button", name=re.compile("Mezzanine Center")).click()
    page.get_by_label("Quantity").select_option("3")
    page.get_by_role("button", name="Find seats").click()
    expect(page.get_by_role("heading", name="Your seats")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Row [A-Z]+, Seat \d+"))).to_have_count(3)


def test_a_steward_admits_a_ticket_and_refuses_its_second_scan(
        page: Page, server: str, settings: Settings, venue: VenueFixture) -> None:
    buy(server, venue.sections["Orchestra Center"], DAY, 1, "guest@example.com")
    fan = mint_token(settings.jwt_secret, user_id="guest", email="guest@example.com")
    tickets = httpx.get(f"{server}/api/tickets/amphitheater/my-tickets/",
                        headers={"Authorization": f"Bearer {fan}"}).json()["data"]
    code = tickets[0]["ticket_code"]
    staff = mint_token(settings.jwt_secret, user_id="steward-1", email="s@example.com",
                       is_staff=True)

    page.goto(f"{server}/gate/")
    expect(page.get_by_role("heading", name="Gate")).to_be_visible()
    look(page, "gate-sign-in")
    page.get_by_label("Staff token").fill(staff)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Gate").select_option("amphitheater")
    page.get_by_label("Ticket code").fill(code)
    page.get_by_role("button", name="Check ticket").click()
    result = page.get_by_role("status")
    expect(result).to_contain_text("ADMITTED")
    look(page, "gate-admitted")
    page.get_by_label("Ticket code").fill(code)
    page.get_by_role("button", name="Check ticket").click()
    expect(result).to_contain_text("REFUSED")
    expect(page.get_by_role("listitem")).to_have_count(2)
    look(page, "gate-refused")
