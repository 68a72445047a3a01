"""A fan gives a ticket away, in a real browser (see test_journeys.py): "Transfer" under a
ticket on My tickets, the recipient's email and a confirmation ticked in the form itself,
"Send ticket"; the ticket leaves the giver's list and shows up in the recipient's, with
a new code. And the refusals, in an alert with the API's words.

The server's clock is fixed (SCAN_TEST_NOW = GATE_NOW, the evening of June 19, 2027 at the
venue) and transfers close 24 hours before a show's day begins: the June 19 and 20 shows
are closed then, June 21's is still open."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from amphi.settings import Settings
from api.auth import mint_token
from tests.api._support import BASE, DAY, EVENT_DAYS, VenueFixture
from tests.web._support import buy, look

LONG = 15_000  # ms: what a journey waits at most for a screen
OPEN_DAY = EVENT_DAYS[2]  # June 21: transfers close at the start of June 20, at the venue
SECTION = "Orchestra Center"
CONFIRM = "I understand this ticket will no longer be mine"


def codes_of(url: str, token: str) -> list[str]:
    """The codes of the amphitheatre tickets that `my-tickets` lists for this token."""
    resp = httpx.get(f"{url}{BASE}/my-tickets/", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.text
    return [t["ticket_code"] for t in resp.json()["data"]]


def sign_in(page: Page, token: str) -> None:
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()


def transfer(page: Page, code: str, email: str) -> None:
    """Open the ticket's transfer form, fill it in, confirm and send."""
    page.get_by_role("button", name=f"Transfer ticket {code}").click()
    form = page.get_by_role("group", name=f"Transfer ticket {code}")
    expect(form.get_by_label("Recipient's email")).to_be_focused()
    form.get_by_label("Recipient's email").fill(email)
    form.get_by_label(CONFIRM).check()
    form.get_by_role("button", name="Send ticket").click()


def test_a_fan_transfers_a_ticket(page: Page, server: str, settings: Settings,
                                  venue: VenueFixture) -> None:
    buy(server, venue.sections[SECTION], OPEN_DAY, 2, "ana@example.com")
    ana = mint_token(settings.jwt_secret, user_id="ana", email="ana@example.com")
    ben = mint_token(settings.jwt_secret, user_id="ben", email="ben@example.com")
    given, kept = codes_of(server, ana)

    page.goto(f"{server}/#/tickets")
    sign_in(page, ana)
    tickets = page.get_by_role("article")
    expect(tickets).to_have_count(2, timeout=LONG)
    page.get_by_role("button", name=f"Transfer ticket {given}").click()
    form = page.get_by_role("group", name=f"Transfer ticket {given}")
    expect(form).to_contain_text("The QR code shown here will stop working.")
    expect(form).to_contain_text("gets new codes by email")
    email = form.get_by_label("Recipient's email")
    expect(email).to_be_focused()
    email.fill("ben@example.com")
    form.get_by_label(CONFIRM).check()
    look(page, "transfer")
    form.get_by_role("button", name="Send ticket").click()

    sent = page.get_by_role("status").filter(has_text="Ticket sent to ben@example.com.")
    expect(sent).to_be_visible(timeout=LONG)
    expect(tickets).to_have_count(1)
    expect(tickets).to_contain_text(kept)
    expect(page.get_by_role("button", name=f"Transfer ticket {given}")).to_have_count(0)
    assert codes_of(server, ana) == [kept]

    # the recipient signs in: the ticket is theirs, with a new code
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, ben)
    expect(tickets).to_have_count(1, timeout=LONG)
    (new,) = codes_of(server, ben)
    assert new not in (given, kept)
    assert new.startswith("AMPH-")
    expect(tickets).to_contain_text(new)
    expect(page.get_by_role("img", name=f"QR code for ticket {new}")).to_be_visible()
    expect(tickets).not_to_contain_text(given)


def test_a_refused_transfer_says_why(page: Page, server: str, settings: Settings,
                                     venue: VenueFixture) -> None:
    buy(server, venue.sections[SECTION], DAY, 1, "ana@example.com")  # closed at this clock
    buy(server, venue.sections[SECTION], OPEN_DAY, 1, "ana@example.com")
    ana = mint_token(settings.jwt_secret, user_id="ana", email="ana@example.com")
    closed, open_ = codes_of(server, ana)  # listed by date

    page.goto(f"{server}/#/tickets")
    sign_in(page, ana)
    tickets = page.get_by_role("article")
    expect(tickets).to_have_count(2, timeout=LONG)

    # to one's own email: the API's validation message
    transfer(page, open_, "ana@example.com")
    alert = page.get_by_role("alert")
    expect(alert).to_have_text("The ticket is already this email's.", timeout=LONG)
    form = page.get_by_role("group", name=f"Transfer ticket {open_}")
    expect(form.get_by_label("Recipient's email")).to_be_focused()
    look(page, "transfer-refused")
    # Cancel closes the form, and the focus goes back to its button
    form.get_by_role("button", name="Cancel").click()
    expect(form).to_be_hidden()
    expect(alert).to_have_count(0)
    opener = page.get_by_role("button", name=f"Transfer ticket {open_}")
    expect(opener).to_be_focused()
    expect(opener).to_have_attribute("aria-expanded", "false")

    # a show whose transfers have closed (409)
    transfer(page, closed, "ben@example.com")
    expect(alert).to_have_text(
        "Transfers for this show closed 24 hours before its day began.", timeout=LONG)
    expect(tickets).to_have_count(2)
    assert codes_of(server, ana) == [closed, open_]
