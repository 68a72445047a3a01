"""Bad input to checkout, confirm and the Stripe webhook: a clear 4xx in the error
envelope (or a plain 200 acknowledgement for events that are not ours), and nothing
written: no ledger row, no Redis change, no job."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis
from rq import Queue
from sqlalchemy import Engine

from amphi.settings import Settings
from tests._storage import redis_snapshot
from tests.api._support import BASE, assert_error, data
from tests.payments._support import (
    CHECKOUT,
    CONFIRM,
    SUCCEEDED,
    WEBHOOK,
    WEBHOOK_SECRET,
    checkout,
    checkout_body,
    make_hold,
    order_row,
    row_counts,
    sign,
    stripe_event,
)


@dataclass
class Case:
    name: str
    status: int
    code: str | None = None
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


class Unchanged:
    """Everything a refused request must leave alone."""

    def __init__(self, engine: Engine, client: redis.Redis, queue: Queue) -> None:
        self.engine, self.client, self.queue = engine, client, queue
        self.before = self.take()

    def take(self) -> tuple:
        return (row_counts(self.engine), redis_snapshot(self.client), self.queue.count)

    def check(self, what: str) -> None:
        after = self.take()
        assert after[0] == self.before[0], (what, "ledger", self.before[0], after[0])
        assert after[1] == self.before[1], (what, "redis changed")
        assert after[2] == self.before[2] == 0, (what, "a job was queued")


async def send(api: httpx.AsyncClient, path: str, case: Case) -> httpx.Response:
    if case.json is not None:
        return await api.post(path, json=case.json, headers=case.headers)
    return await api.post(path, content=case.content or b"",
                          headers={"Content-Type": "application/json", **case.headers})


async def test_bad_checkouts(open_api, demo_settings: Settings, venue, ledger_engine: Engine,
                             redis_client: redis.Redis, queue: Queue) -> None:
    section = venue.sections["Orchestra Center"]
    async with open_api(demo_settings, hold_ttl_seconds=1) as short:
        expired = await make_hold(short, section, 2)
    async with open_api(demo_settings) as api:
        live = (await make_hold(api, section, 2))["hold_id"]
        released = (await make_hold(api, section, 2))["hold_id"]
        data(await api.post(f"{BASE}/holds/{released}/release/"))
        await asyncio.sleep(1.2)  # the short hold is past its expiry now

        def body(hold_id: Any = live, **billing: Any) -> dict:
            return checkout_body(hold_id, **billing)

        cases = [
            Case("no body", 400, "invalid_request", content=b""),
            Case("bad JSON", 400, "invalid_request", content=b'{"hold_id": '),
            Case("not an object", 400, "invalid_request", json=[live]),
            Case("missing hold_id", 400, "invalid_request",
                 json={"billing_details": {"email": "a@example.com"}}),
            Case("null hold_id", 400, "invalid_request", json=body(None)),
            Case("non-UUID hold_id", 422, "validation_error", json=body("hold-1")),
            Case("number hold_id", 422, "validation_error", json=body(12345)),
            Case("unknown hold", 404, "hold_not_found", json=body(str(uuid.uuid4()))),
            Case("released hold", 410, "hold_not_active", json=body(released)),
            Case("expired hold", 410, "hold_not_active", json=body(expired["hold_id"])),
            Case("bad billing email", 422, "validation_error", json=body(email="not-an-email")),
            Case("no email from a guest", 422, "validation_error",
                 json={"hold_id": live, "billing_details": {}}),
            Case("email too long", 422, "validation_error",
                 json=body(email="a" * 320 + "@example.com")),
            Case("billing not an object", 400, "invalid_request",
                 json={"hold_id": live, "billing_details": "me@example.com"}),
            Case("first name too long", 422, "validation_error", json=body(firstName="x" * 101)),
            Case("first name not text", 422, "validation_error", json=body(firstName=7)),
            Case("NUL in a name", 422, "validation_error", json=body(lastName="Fan\x00")),
            Case("NUL in the email", 422, "validation_error", json=body(email="a\x00@b.c")),
            Case("oversized body", 413, "payload_too_large",
                 json=body(padding="x" * (demo_settings.max_body_bytes + 1))),
        ]
        unchanged = Unchanged(ledger_engine, redis_client, queue)
        for case in cases:
            assert_error(await send(api, CHECKOUT, case), case.status, case.code)
            unchanged.check(case.name)
        # after all that, the live hold checks out normally
        order = await checkout(api, live)
    assert order_row(ledger_engine, order["order_id"])["status"] == "pending"


async def test_bad_confirms(open_api, demo_settings: Settings, venue, ledger_engine: Engine,
                            redis_client: redis.Redis, queue: Queue) -> None:
    async with open_api(demo_settings) as api:
        hold = await make_hold(api, venue.sections["Lawn"], 2)
        order = await checkout(api, hold["hold_id"])
        cases = [
            Case("no body", 400, "invalid_request", content=b""),
            Case("bad JSON", 400, "invalid_request", content=b"{order_id}"),
            Case("missing order_id", 400, "invalid_request", json={"id": order["order_id"]}),
            Case("non-UUID order_id", 422, "validation_error", json={"order_id": "ORD-1"}),
            Case("order number instead of id", 422, "validation_error",
                 json={"order_id": order["order_number"]}),
            Case("unknown order", 404, "order_not_found", json={"order_id": str(uuid.uuid4())}),
            Case("oversized body", 413, "payload_too_large",
                 json={"order_id": order["order_id"], "x": "y" * 20_000}),
        ]
        unchanged = Unchanged(ledger_engine, redis_client, queue)
        for case in cases:
            assert_error(await send(api, CONFIRM, case), case.status, case.code)
            unchanged.check(case.name)
    assert order_row(ledger_engine, order["order_id"])["status"] == "pending"


def _intent(order_id: str, intent_id: str = "pi_not_ours", **metadata: str) -> dict[str, Any]:
    return {"id": intent_id, "object": "payment_intent", "amount": 9_000, "currency": "usd",
            "status": "succeeded",
            "metadata": {"amphitheater": "true", "order_id": order_id, **metadata}}


def _signed(payload: str, secret: str = WEBHOOK_SECRET, **kw: Any) -> dict[str, str]:
    return {"Stripe-Signature": sign(payload, secret, **kw)}


async def test_webhooks_refused(open_api, demo_settings: Settings, venue, ledger_engine: Engine,
                                redis_client: redis.Redis, queue: Queue) -> None:
    settings = demo_settings.replace(stripe_webhook_secret=WEBHOOK_SECRET)
    async with open_api(settings) as api:
        hold = await make_hold(api, venue.sections["Lawn"], 2)
        order = await checkout(api, hold["hold_id"])
        real_intent = order_row(ledger_engine, order["order_id"])["payment_intent_id"]
        payload = json.dumps(stripe_event(_intent(order["order_id"], real_intent)))
        tampered = payload.replace('"amount": 9000', '"amount": 1')
        assert tampered != payload
        cases = [
            Case("no signature", 400, "invalid_request", content=payload.encode()),
            Case("garbage signature", 400, "invalid_request", content=payload.encode(),
                 headers={"Stripe-Signature": "t=1,v1=abc"}),
            Case("wrong secret", 400, "invalid_request", content=payload.encode(),
                 headers=_signed(payload, "whsec_someone_else")),
            Case("tampered payload", 400, "invalid_request", content=tampered.encode(),
                 headers=_signed(payload)),
            Case("stale signature", 400, "invalid_request", content=payload.encode(),
                 headers=_signed(payload, timestamp=int(time.time()) - 3600)),
            Case("signed, not JSON", 400, "invalid_request", content=b"not json",
                 headers=_signed("not json")),
            Case("oversized", 413, "payload_too_large", content=b" " * 1_048_577,
                 headers=_signed(" " * 1_048_577)),
            Case("oversized, said up front", 413, "payload_too_large", content=b"{}",
                 headers={**_signed("{}"), "Content-Length": "2000000"}),
            Case("signed, not an event", 400, "invalid_request", content=b'{"id": "evt_1"}',
                 headers=_signed('{"id": "evt_1"}')),
            Case("signed, data not an object", 400, "invalid_request",
                 content=(bad := json.dumps({"id": "evt_2", "type": SUCCEEDED, "data": 7})
                          ).encode(), headers=_signed(bad)),
        ]
        unchanged = Unchanged(ledger_engine, redis_client, queue)
        for case in cases:
            assert_error(await send(api, WEBHOOK, case), case.status, case.code)
            unchanged.check(case.name)

    # no STRIPE_WEBHOOK_SECRET: every webhook is refused, even a well-signed one
    async with open_api(demo_settings) as api:
        assert not demo_settings.stripe_webhook_secret
        assert_error(await api.post(WEBHOOK, content=payload.encode(),
                                    headers=_signed(payload)), 400, "invalid_request")
        unchanged.check("no webhook secret")
    assert order_row(ledger_engine, order["order_id"])["status"] == "pending"


async def test_webhooks_acknowledged_but_not_ours(open_api, demo_settings: Settings, venue,
                                                  ledger_engine: Engine,
                                                  redis_client: redis.Redis,
                                                  queue: Queue) -> None:
    """Well-signed events that name nothing of ours: 200 (so Stripe stops retrying), no
    work, nothing recorded."""
    settings = demo_settings.replace(stripe_webhook_secret=WEBHOOK_SECRET)
    async with open_api(settings) as api:
        hold = await make_hold(api, venue.sections["Lawn"], 2)
        order = await checkout(api, hold["hold_id"])
        real_intent = order_row(ledger_engine, order["order_id"])["payment_intent_id"]
        not_amph = _intent(order["order_id"], real_intent)
        not_amph["metadata"] = {"order_id": order["order_id"]}
        events = {
            "unknown event type": stripe_event({"id": "cus_1", "object": "customer"},
                                               "customer.created"),
            "charge event": stripe_event({"id": "ch_1", "object": "charge"}, "charge.succeeded"),
            "not an amphitheatre payment": stripe_event(not_amph),
            "unknown order": stripe_event(_intent(str(uuid.uuid4()))),
            "another intent for a real order": stripe_event(_intent(order["order_id"])),
            "failure of another intent": stripe_event(_intent(order["order_id"]),
                                                      "payment_intent.payment_failed"),
        }
        assert events["unknown order"]["type"] == SUCCEEDED
        unchanged = Unchanged(ledger_engine, redis_client, queue)
        for name, event in events.items():
            payload = json.dumps(event)
            answer = await api.post(WEBHOOK, content=payload.encode(), headers=_signed(payload))
            assert answer.status_code == 200, (name, answer.text)
            assert data(answer) == {"received": True, "handled": False}, name
            unchanged.check(name)
    assert order_row(ledger_engine, order["order_id"])["status"] == "pending"
