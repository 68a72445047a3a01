"""The fan pays by card with Stripe configured: the app loads Stripe.js with the publishable
key from /api/config/, mounts the Payment Element for the checkout's client secret, and
confirms; the server checks the PaymentIntent at Stripe before it issues the tickets.

Stripe.js cannot be loaded here (no network to Stripe), so the browser gets a stand-in for
it, served at Stripe's own address (the page's Content-Security-Policy must allow it): its
card field's number goes to a route that pays the intent at localstripe as Stripe.js would
(tests/payments/_support.pay). What is Stripe's is faked; everything of ours is real."""

from __future__ import annotations

import json
import re

import stripe
from playwright.sync_api import Page, Route, expect

from tests.payments._support import DECLINED_CARD, GOOD_CARD, pay, stripe_client
from tests.web._support import look
from tests.web.conftest import STRIPE_PUBLISHABLE_KEY
from tests.web.test_journeys import LONG, choose_seats

# Stripe.js's calls the app makes, on a card field the test can type into.
STRIPE_JS = """
window.Stripe = function (key) {
  if (key !== PUBLISHABLE_KEY) throw new Error("unexpected publishable key " + key);
  let secret = null, field = null;
  return {
    elements(options) {
      secret = options.clientSecret;
      return {create() { return {mount(where) {
        const label = document.createElement("label");
        label.textContent = "Card number";
        field = document.createElement("input");
        label.append(field);
        where.append(label);
      }}; }};
    },
    async confirmPayment() {
      const r = await fetch("https://api.stripe.com/test/pay", {method: "POST",
        body: JSON.stringify({client_secret: secret, card: field.value})});
      const answer = await r.json();
      return answer.error ? {error: answer.error} : {paymentIntent: answer};
    },
  };
};
""".replace("PUBLISHABLE_KEY", json.dumps(STRIPE_PUBLISHABLE_KEY))


def stand_in_for_stripe(page: Page, localstripe: str) -> list[str]:
    """Serve the stand-in; returns the intents it paid."""
    paid: list[str] = []

    def pay_intent(route: Route) -> None:
        sent = json.loads(route.request.post_data or "{}")
        intent_id = sent["client_secret"].split("_secret_")[0]
        try:
            intent = pay(stripe_client(localstripe), intent_id, card=sent["card"])
        except stripe.CardError as declined:
            body = {"error": {"type": "card_error", "message": declined.user_message}}
        else:
            paid.append(intent_id)
            body = {"id": intent_id, "status": intent["status"]}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body),
                      headers={"Access-Control-Allow-Origin": "*"})

    page.route("https://js.stripe.com/v3/", lambda route: route.fulfill(
        status=200, content_type="text/javascript", body=STRIPE_JS))
    page.route("https://api.stripe.com/test/pay", pay_intent)
    return paid


def check_out(page: Page, url: str) -> None:
    choose_seats(page, url, "Mezzanine Right", 2)
    expect(page.get_by_role("heading", name="Your seats")).to_be_visible()
    page.get_by_label("Email").fill("card@example.com")
    page.get_by_label("First name").fill("Ada")
    page.get_by_label("Last name").fill("Byron")
    page.get_by_role("button", name="Continue to payment").click()


def test_a_card_payment_with_stripe(page: Page, stripe_server: str, localstripe: str) -> None:
    paid = stand_in_for_stripe(page, localstripe)
    check_out(page, stripe_server)
    page.get_by_label("Card number").fill(GOOD_CARD)
    look(page, "pay-card")
    page.get_by_role("button", name="Pay", exact=True).click()
    expect(page.get_by_role("heading", name="You're going!")).to_be_visible(timeout=LONG)
    expect(page.get_by_text(re.compile(r"ORD-\d+"))).to_be_visible()
    assert len(paid) == 1


def test_a_declined_card_says_so(page: Page, stripe_server: str, localstripe: str) -> None:
    paid = stand_in_for_stripe(page, localstripe)
    check_out(page, stripe_server)
    page.get_by_label("Card number").fill(DECLINED_CARD)
    page.get_by_role("button", name="Pay", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Payment failed:")
    expect(page.get_by_role("button", name="Pay", exact=True)).to_be_enabled()  # another go
    expect(page.get_by_role("heading", name="Your seats")).to_be_visible()  # still held
    look(page, "payment-failed")
    assert paid == []
