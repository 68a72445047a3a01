"""Helpers of the payment tests: the HTTP steps of a purchase, Stripe (localstripe) payments
and signed webhooks, what the ledger and Redis hold afterwards, and the RQ worker run the
way production runs it (a real `amphi worker --burst`, or RQ's SimpleWorker in-process)."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import redis
import stripe
from PIL import Image
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from sqlalchemy import Engine, text

from amphi.keys import BlockKeys
from amphi.settings import Settings
from api.auth import mint_token
from ledger import venue_seed
from tests._servers import amphi_env
from tests.api._support import BASE, DAY, data, hold_body

REPO = Path(__file__).resolve().parents[2]
CHECKOUT = "/api/payments/amphitheater/checkout/"
CONFIRM = "/api/payments/amphitheater/confirm/"
WEBHOOK = "/api/payments/webhook/stripe/"
MY_AMPH = "/api/tickets/amphitheater/my-tickets/"
MY_ALL = "/api/tickets/my/"
CREATE_HOLD = f"{BASE}/holds/create/"

SECRET_KEY = "sk_test_amphi_payments"
WEBHOOK_SECRET = "whsec_test_amphi_payments"
GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000341"  # attaches, then the charge is declined

SECTION = {s.name: s for s in venue_seed.SECTIONS}
LEDGER_TABLES = ("orders", "order_lines", "tickets", "amphitheater_tickets", "stripe_events",
                 "ticket_types")
SUCCEEDED = "payment_intent.succeeded"


# -- the purchase over HTTP ---------------------------------------------------------------------
def bearer(settings: Settings, user: str, email: str | None = None) -> dict[str, str]:
    token = mint_token(settings.jwt_secret, user_id=user, email=email or f"{user}@example.com")
    return {"Authorization": f"Bearer {token}"}


async def make_hold(client: httpx.AsyncClient, section_id: str, quantity: int,
                    headers: dict[str, str] | None = None, day: str = DAY) -> dict[str, Any]:
    return data(await client.post(CREATE_HOLD, json=hold_body(section_id, quantity, day),
                                  headers=headers), 201)


def checkout_body(hold_id: str, email: str = "fan@example.com", **billing: Any) -> dict:
    return {"hold_id": hold_id,
            "billing_details": {"email": email, "firstName": "Fan", "lastName": "Buyer",
                                **billing}}


async def checkout(client: httpx.AsyncClient, hold_id: str, *, email: str = "fan@example.com",
                   headers: dict[str, str] | None = None) -> dict[str, Any]:
    return data(await client.post(CHECKOUT, json=checkout_body(hold_id, email), headers=headers))


async def confirm(client: httpx.AsyncClient, order_id: str,
                  headers: dict[str, str] | None = None) -> httpx.Response:
    return await client.post(CONFIRM, json={"order_id": order_id}, headers=headers)


# -- Stripe: localstripe and signed webhooks ----------------------------------------------------
def stripe_client(api_base: str) -> stripe.StripeClient:
    return stripe.StripeClient(SECRET_KEY, base_addresses={"api": api_base})


def intent_dict(client: stripe.StripeClient, intent_id: str) -> dict[str, Any]:
    """The PaymentIntent as localstripe has it now, as plain JSON data."""
    return client.v1.payment_intents.retrieve(intent_id).to_dict(for_json=True)


def pay(client: stripe.StripeClient, intent_id: str, card: str = GOOD_CARD) -> dict[str, Any]:
    """What Stripe.js does in the fan's browser: a card, attached and confirmed. A declined
    card raises stripe.CardError (the intent goes back to requires_payment_method)."""
    pm = client.v1.payment_methods.create(params={
        "type": "card",
        "card": {"number": card, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
    })
    client.v1.payment_intents.update(intent_id, params={"payment_method": pm.id})
    client.v1.payment_intents.confirm(intent_id)
    return intent_dict(client, intent_id)


def stripe_event(intent: dict[str, Any], etype: str = SUCCEEDED,
                 event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "livemode": False,
        "type": etype,
        "data": {"object": intent},
    }


def intent_of(engine: Engine, order: dict, hold_id: str, status: str) -> dict[str, Any]:
    """The PaymentIntent of a checked-out order as a webhook carries it (our metadata)."""
    row = order_row(engine, order["order_id"])
    return {"id": row["payment_intent_id"], "object": "payment_intent",
            "amount": row["total_cents"], "currency": "usd", "status": status,
            "metadata": {"amphitheater": "true", "order_id": order["order_id"],
                         "hold_id": hold_id}}


def sign(payload: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)
    assert header.startswith("t=") and ",v1=" in header, header
    return header


async def deliver(client: httpx.AsyncClient, event: dict[str, Any],
                  secret: str = WEBHOOK_SECRET) -> httpx.Response:
    payload = json.dumps(event)
    return await client.post(WEBHOOK, content=payload.encode(), headers={
        "Stripe-Signature": sign(payload, secret), "Content-Type": "application/json"})


# -- the ledger, by SQL -------------------------------------------------------------------------
def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def rows(engine: Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql), params).mappings()]


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in LEDGER_TABLES}


def order_row(engine: Engine, order_id: str) -> dict[str, Any]:
    found = rows(engine, "SELECT * FROM orders WHERE id = :id", id=order_id)
    assert len(found) == 1, found
    return found[0]


def order_lines(engine: Engine, order_id: str) -> list[dict[str, Any]]:
    return rows(engine, "SELECT line_no, seat_index, row, seat FROM order_lines "
                        "WHERE order_id = :id ORDER BY line_no", id=order_id)


def stripe_event_count(engine: Engine, event_id: str) -> int:
    return scalar(engine, "SELECT count(*) FROM stripe_events WHERE id = :id", id=event_id)


def one_set_of_tickets(engine: Engine, order_id: str, quantity: int) -> list[dict[str, Any]]:
    """Asserts the order has exactly one set of tickets (invariants 4 and 5): `quantity`
    amphitheatre tickets, each with its own main ticket and exactly one comp festival day
    pass for its date, nothing else; the order's lines name the ticketed seats. Returns the
    amphitheatre tickets by line."""
    amph = rows(engine, """
        SELECT a.line_no, a.seat_index, a.row, a.seat, a.status, a.event_date,
               a.includes_festival_access, a.price_paid_cents,
               m.id AS ticket_id, m.code, m.kind AS main_kind, m.order_id AS main_order,
               f.id AS pass_id, f.code AS pass_code, f.kind AS pass_kind, f.is_comp,
               f.price_cents AS pass_price, f.event_date AS pass_date,
               f.granted_by_id, f.order_id AS pass_order
        FROM amphitheater_tickets a
        JOIN tickets m ON m.id = a.ticket_id
        LEFT JOIN tickets f ON f.id = a.festival_day_ticket_id
        WHERE a.order_id = :id ORDER BY a.line_no""", id=order_id)
    assert [t["line_no"] for t in amph] == list(range(1, quantity + 1)), amph
    kinds = rows(engine, "SELECT kind, count(*) AS n FROM tickets WHERE order_id = :id "
                         "GROUP BY kind", id=order_id)
    assert {k["kind"]: k["n"] for k in kinds} == {"amphitheater": quantity,
                                                  "festival_day": quantity}, kinds
    for t in amph:
        assert t["status"] == "issued" and t["main_kind"] == "amphitheater", t
        assert t["code"].startswith("AMPH-") and t["pass_code"].startswith("FEST-"), t
        assert (t["pass_kind"], t["is_comp"], t["pass_price"]) == ("festival_day", True, 0), t
        assert t["granted_by_id"] == t["ticket_id"], t  # the pass names its ticket
        assert t["pass_date"] == t["event_date"] and t["includes_festival_access"], t
        assert str(t["main_order"]) == str(t["pass_order"]) == str(order_id), t
    assert len({t["pass_id"] for t in amph}) == quantity  # one pass a ticket, none shared
    # every festival pass of the order is linked from exactly one of its tickets
    assert scalar(engine, """
        SELECT count(*) FROM tickets f WHERE f.order_id = :id AND f.kind = 'festival_day'
        AND (SELECT count(*) FROM amphitheater_tickets a
             WHERE a.festival_day_ticket_id = f.id) = 1""", id=order_id) == quantity
    lines = order_lines(engine, order_id)
    assert [(ln["seat_index"], ln["row"], ln["seat"]) for ln in lines] == [
        (t["seat_index"], t["row"], t["seat"]) for t in amph], (lines, amph)
    return amph


def seat_indices(tickets: list[dict[str, Any]]) -> list[int]:
    return sorted(t["seat_index"] for t in tickets)


# -- Redis --------------------------------------------------------------------------------------
def block_of(section: str, day: str = DAY) -> BlockKeys:
    return BlockKeys(date.fromisoformat(day), SECTION[section].slug)


@dataclass(frozen=True)
class BlockState:
    seats: str  # one byte a seat ('0', 'H', 'S'); '' for general admission
    capacity: int
    held: int
    sold: int

    def at(self, indices: list[int]) -> str:
        return "".join(self.seats[i] for i in indices)

    def indices(self, state: str) -> list[int]:
        return [i for i, s in enumerate(self.seats) if s == state]


def block_state(client: redis.Redis, block: BlockKeys) -> BlockState:
    meta = {k.decode(): v.decode() for k, v in client.hgetall(block.meta).items()}
    raw = client.get(block.seats)
    return BlockState(raw.decode() if raw else "", int(meta["capacity"]), int(meta["held"]),
                      int(meta["sold"]))


def assert_block_matches_ledger(client: redis.Redis, engine: Engine, section: str,
                                day: str = DAY) -> BlockState:
    """Never oversold, nothing sold twice: Redis' sold counter and sold seats are exactly the
    ledger's issued tickets of the block, and the counters add up (invariants 1 and 2)."""
    state = block_state(client, block_of(section, day))
    tickets = rows(engine, """
        SELECT a.seat_index FROM amphitheater_tickets a JOIN sections s ON s.id = a.section_id
        WHERE s.slug = :slug AND a.event_date = :day AND a.status = 'issued'""",
                   slug=SECTION[section].slug, day=date.fromisoformat(day))
    assert state.sold == len(tickets), (state, tickets)
    assert state.held >= 0 and state.held + state.sold <= state.capacity, state
    if state.seats:
        sold = sorted(t["seat_index"] for t in tickets)
        assert len(set(sold)) == len(sold), sold  # no seat ticketed twice
        assert state.indices("S") == sold, (state.indices("S"), sold)
        assert len(state.indices("H")) == state.held, state
    return state


# -- QR images ----------------------------------------------------------------------------------
def png_from_data_uri(uri: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix), uri[:40]
    return open_png(base64.b64decode(uri[len(prefix):], validate=True))


def open_png(raw: bytes) -> Image.Image:
    assert raw.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(raw))
    image.load()  # decodes every pixel: a truncated or corrupt PNG raises here
    assert image.format == "PNG" and image.width > 20 and image.height > 20, image
    return image


# -- the RQ worker ------------------------------------------------------------------------------
def worker_command() -> list[str]:
    return [str(Path(sys.executable).with_name("amphi")), "worker", "--burst"]


def start_worker_process(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    """A real `amphi worker --burst` (forks a work horse per job, exits when idle)."""
    with log_path.open("ab") as log:
        return subprocess.Popen(worker_command(), cwd=REPO,
                                env=amphi_env(settings),
                                stdout=log, stderr=subprocess.STDOUT)


def run_worker_process(settings: Settings, log_path: Path, timeout: float = 60) -> None:
    proc = start_worker_process(settings, log_path)
    try:
        code = proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0, log_path.read_text()


def assert_no_failed_jobs(queue: Queue) -> None:
    failed = [*FailedJobRegistry(queue=queue).get_job_ids(),
              *ScheduledJobRegistry(queue=queue).get_job_ids()]
    reports = []
    for job_id in failed:
        job = Job.fetch(job_id, connection=queue.connection)
        result = job.latest_result()
        reports.append(f"{job.description}: {result.exc_string if result else job.get_status()}")
    assert not failed, "jobs failed (retry scheduled):\n" + "\n".join(reports)
    assert queue.count == 0, queue.job_ids

