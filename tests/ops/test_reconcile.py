"""`amphi reconcile` against a ledger with real sold tickets (bought over HTTP in demo
mode): drift injected on purpose in Redis is found (exit 1, the table names it) and
`--fix` repairs it (exit 0, Redis agrees with the ledger); sales being finalised keep their
seats; a finalisation after a flush waits for the fix instead of refunding; stuck payments
(in the ledger, and at Stripe without a webhook) are found and finalised."""

from __future__ import annotations

import json
import uuid

import pytest
import redis
from sqlalchemy import Engine, text

from amphi.geometry import Geometry
from amphi.keys import BlockKeys
from amphi.payments import DemoGateway
from amphi.settings import Settings
from amphi.signing import load_signer
from engine import sales
from ledger.db import session_factory
from services import finalize
from tests._storage import redis_snapshot
from tests.api._support import EVENT_DAYS, VenueFixture, assert_error
from tests.engine._support import assert_block_ok, redis_now_ms
from tests.ops._support import (
    BLOCKS,
    CLEAN,
    FIXED,
    NOT_FIXED,
    assert_agrees,
    buy,
    reconcile,
)
from tests.payments._support import (
    SECTION,
    bearer,
    block_of,
    block_state,
    confirm,
    order_lines,
    order_row,
    pay,
    rows,
    stripe_client,
)

pytestmark = pytest.mark.slow  # each `amphi reconcile` is a process of its own (~1 s)

D19, D20, D21 = EVENT_DAYS


def slug(section: str) -> str:
    return SECTION[section].slug


def hold_record(client: redis.Redis, block: BlockKeys, hold_id: str) -> dict:
    return json.loads(client.hget(block.records, hold_id))


def set_paid(engine: Engine, order_id: str, minutes_ago: float) -> None:
    """A payment that arrived: the finalisation's first step, and nothing after it."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE orders SET status = 'paid', paid_at = now() - "
                          "make_interval(secs => :s) WHERE id = :id"),
                     {"s": minutes_ago * 60, "id": order_id})


def ticket_count(engine: Engine, order_id: str) -> int:
    return rows(engine, "SELECT count(*) AS n FROM tickets WHERE order_id = :id",
                id=order_id)[0]["n"]


def finalize_deps(settings: Settings, client: redis.Redis, engine: Engine,
                  emails: list[uuid.UUID]) -> finalize.Deps:
    """What the RQ worker gives the finalisation job (demo payments); emails are noted."""
    return finalize.Deps(redis=client, sessions=session_factory(engine), payments=DemoGateway(),
                         enqueue_emails=emails.extend,
                         signer=load_signer(settings.ticket_signing_key, ""))


async def test_injected_drift_is_found_then_fixed(open_api, settings: Settings,
                                                  venue: VenueFixture,
                                                  redis_client: redis.Redis,
                                                  ledger_engine: Engine) -> None:
    # (day, section): the block each kind of drift is injected into, one kind a block
    where = {"sold_not_in_redis": (D19, "Orchestra Left"), "stale_hold": (D19, "Terrace"),
             "held_counter": (D20, "Orchestra Left"), "sold_counter": (D20, "Lawn"),
             "client_counter": (D21, "Mezzanine Center"), "settings": (D21, "Mezzanine Left"),
             "reclaim_bound": (D20, "Terrace")}
    async with open_api() as api:
        for n, (day, section) in enumerate(where.values()):
            await buy(api, settings, venue.sections[section], 3, f"buyer-{n}", day=day)
        stale = await buy(api, settings, venue.sections["Terrace"], 2, "stale-fan", day=D19,
                          pay=False)
        counted = await buy(api, settings, venue.sections["Mezzanine Center"], 2, "held-fan",
                            day=D21, pay=False)
        bounded = await buy(api, settings, venue.sections["Terrace"], 2, "bound-fan", day=D20,
                            pay=False)

    clean = reconcile(settings)
    assert (clean.code, clean.verdict) == (0, CLEAN), clean.out
    assert clean.block_row(D19, slug("Orchestra Left"))[2:] == ["800", "3", "3", "0", "797",
                                                                 "ok"]
    assert clean.block_row(D19, slug("Terrace"))[2:] == ["1500", "3", "3", "2", "1495", "ok"]

    blk = {kind: block_of(section, day) for kind, (day, section) in where.items()}
    sold_seat = block_state(redis_client, blk["sold_not_in_redis"]).indices("S")[1]
    redis_client.setrange(blk["sold_not_in_redis"].seats, sold_seat, "0")
    stale_id = stale.hold["hold_id"]
    an_hour_ago = redis_now_ms(redis_client) - 3_600_000
    redis_client.zadd(blk["stale_hold"].holds, {stale_id: an_hour_ago}, xx=True)
    redis_client.hset(blk["stale_hold"].meta, "due_ms", an_hour_ago)  # as time would have
    bounded_expiry = hold_record(redis_client, blk["reclaim_bound"],
                                 bounded.hold["hold_id"])["expires_ms"]
    redis_client.hset(blk["reclaim_bound"].meta, "due_ms", bounded_expiry + 1)
    redis_client.hset(blk["held_counter"].meta, "held", 7)
    redis_client.hset(blk["sold_counter"].meta, "sold", 1)
    fan_client = hold_record(redis_client, blk["client_counter"], counted.hold["hold_id"])["client"]
    fan_entry = redis_client.hget(blk["client_counter"].records, f"c:{fan_client}").split()
    redis_client.hset(blk["client_counter"].records,
                      mapping={f"c:{fan_client}": b"3 " + fan_entry[1], "c:ghost": "2 0"})
    redis_client.hset(blk["settings"].meta, "price_cents", 1)
    injected = redis_snapshot(redis_client)

    found = reconcile(settings)
    assert (found.code, found.verdict) == (1, NOT_FIXED), found.out
    for kind, (day, section) in where.items():
        assert found.block_row(day, slug(section))[-1] == kind, found.out
        found.finding(day, slug(section), kind)
    place = Geometry(20, 40).seat(sold_seat)  # Orchestra Left: 20 rows of 40
    assert f"(seats {place.row}{place.seat})" in found.finding(D19, slug("Orchestra Left"),
                                                   "sold_not_in_redis")
    assert "held is 7, active holds have 0" in found.finding(D20, slug("Orchestra Left"),
                                                             "held_counter")
    assert "sold is 1, expected 3" in found.finding(D20, "lawn", "sold_counter")
    assert "price 1/active 1, ledger says 7500/1" in found.finding(
        D21, slug("Mezzanine Left"), "settings")
    oks = [ln for ln in found.out.splitlines() if ln.endswith("  ok")]
    assert len(oks) == BLOCKS - len(where), found.out
    assert redis_snapshot(redis_client) == injected  # without --fix, nothing is written

    fixed = reconcile(settings, "--fix")
    assert (fixed.code, fixed.verdict) == (0, FIXED), fixed.out
    for kind, (day, section) in where.items():
        assert fixed.block_row(day, slug(section))[-3:] == [kind, "->", "fixed"], fixed.out
        assert_agrees(redis_client, ledger_engine, section, day)

    assert block_state(redis_client, blk["sold_not_in_redis"]).seats[sold_seat] == "S"
    ended = hold_record(redis_client, blk["stale_hold"], stale_id)
    assert ended["status"] == "expired", ended
    assert block_state(redis_client, blk["stale_hold"]).at(ended["seats"]) == "00"
    assert redis_client.hget(blk["stale_hold"].meta, "expired") == b"1"  # for /metrics
    assert block_state(redis_client, blk["held_counter"]).held == 0
    assert block_state(redis_client, blk["sold_counter"]).sold == 3
    # the counts recomputed from the holds, the fan's rate limit kept, the ghost gone
    entries = {k: v for k, v in redis_client.hgetall(blk["client_counter"].records).items()
               if k.startswith(b"c:")}
    assert entries == {f"c:{fan_client}".encode(): b"1 " + fan_entry[1]}
    assert redis_client.hget(blk["client_counter"].meta, "held") == b"2"  # the hold survived
    assert redis_client.hget(blk["settings"].meta, "price_cents") == b"7500"
    # the bound forgotten (the next hold reads the holds zset again), the hold kept
    assert redis_client.hget(blk["reclaim_bound"].meta, "due_ms") is None
    assert hold_record(redis_client, blk["reclaim_bound"],
                       bounded.hold["hold_id"])["status"] == "active"


async def test_a_sale_being_finalised_keeps_its_seats(open_api, settings: Settings,
                                                       venue: VenueFixture,
                                                       redis_client: redis.Redis,
                                                       ledger_engine: Engine) -> None:
    """Redis sold the seats of a paid order whose tickets are not written yet: reconcile
    must neither report them as sold without a ticket nor free them with --fix."""
    async with open_api() as api:
        await buy(api, settings, venue.sections["Orchestra Center"], 2, "done-fan")
        flying = await buy(api, settings, venue.sections["Orchestra Center"], 4, "paying-fan",
                           pay=False)
    order_id, block = flying.order_id, block_of("Orchestra Center")
    set_paid(ledger_engine, order_id, minutes_ago=0)
    sale = sales.sell(redis_client, block, order_id=order_id, hold_id=flying.hold["hold_id"],
                      quantity=4, preferred=[ln["seat_index"] for ln in
                                             order_lines(ledger_engine, order_id)])
    assert sale is not None and sale.mode == "hold"
    assert block_state(redis_client, block).at(sale.seats) == "SSSS"

    quiet = reconcile(settings)
    assert (quiet.code, quiet.verdict) == (0, CLEAN), quiet.out
    assert "sold_only_in_redis" not in quiet.out
    assert quiet.block_row(D19, "orch-center")[2:] == ["1500", "2", "6", "0", "1494", "ok"]

    # drift elsewhere in the same block makes --fix rebuild it: the sale must survive.
    # Drift on another day stays, as --event-dates leaves that day alone.
    redis_client.hset(block.meta, "held", 5)
    redis_client.hset(block_of("Lawn", D20).meta, "held", 3)
    fixed = reconcile(settings, "--fix", "--event-dates", D19)
    assert (fixed.code, fixed.verdict) == (0, FIXED), fixed.out
    assert fixed.out.count(f"{D19}  ") == 8 and f"{D20}  " not in fixed.out, fixed.out
    assert redis_client.hget(block_of("Lawn", D20).meta, "held") == b"3"
    state = block_state(redis_client, block)
    assert (state.at(sale.seats), state.sold, state.held) == ("SSSS", 6, 0)
    assert ticket_count(ledger_engine, order_id) == 0
    assert_block_ok(redis_client, block)

    emails: list[uuid.UUID] = []
    deps = finalize_deps(settings, redis_client, ledger_engine, emails)
    assert finalize.finalize_order(deps, uuid.UUID(order_id)).value == "completed"
    assert emails == [uuid.UUID(order_id)]
    assert sorted(ln["seat_index"] for ln in order_lines(ledger_engine, order_id)) == sale.seats
    assert_agrees(redis_client, ledger_engine, "Orchestra Center", D19)
    after = reconcile(settings, "--event-dates", D19)
    assert (after.code, after.verdict) == (0, "no drift in 8 blocks; no oversold seat"), \
        after.out


async def test_a_payment_after_a_flush_waits_for_the_fix(open_api, settings: Settings,
                                                          venue: VenueFixture,
                                                          redis_client: redis.Redis,
                                                          ledger_engine: Engine) -> None:
    """Redis lost every block while the fan paid: the confirmation must not refund (the
    seats are not gone, only unknown); the order stays paid until reconcile rebuilds the
    blocks and finalises it."""
    async with open_api() as api:
        await buy(api, settings, venue.sections["Orchestra Right"], 2, "earlier-fan")
        paying = await buy(api, settings, venue.sections["Orchestra Right"], 3, "paying-fan",
                           pay=False)
        held = sorted(ln["seat_index"] for ln in order_lines(ledger_engine, paying.order_id))
        redis_client.flushdb()
        assert_error(await confirm(api, paying.order_id,
                                   headers=bearer(settings, "paying-fan")), 503,
                     "service_unavailable")
    row = order_row(ledger_engine, paying.order_id)
    assert (row["status"], row["failure_reason"] or "") == ("paid", ""), row
    assert ticket_count(ledger_engine, paying.order_id) == 0

    found = reconcile(settings, "--stuck-after", "0")
    assert found.code == 1, found.out
    assert found.out.count(": missing_block:") == BLOCKS, found.out
    assert f"order {paying.order_id}: paid, no tickets (status paid)" in found.out

    fixed = reconcile(settings, "--fix", "--stuck-after", "0")
    assert (fixed.code, fixed.verdict) == (0, FIXED), fixed.out
    assert f"order {paying.order_id}: paid, no tickets (status paid) -> completed" in fixed.out
    assert order_row(ledger_engine, paying.order_id)["status"] == "completed"
    # the fan's seats were free after the rebuild: the order got them back
    assert sorted(ln["seat_index"] for ln in order_lines(ledger_engine, paying.order_id)) == held
    assert ticket_count(ledger_engine, paying.order_id) == 2 * 3  # tickets and their passes
    assert_agrees(redis_client, ledger_engine, "Orchestra Right", D19)
    assert block_state(redis_client, block_of("Orchestra Right")).sold == 5
    for section, day in ((s, d) for s in SECTION for d in EVENT_DAYS):
        assert_block_ok(redis_client, block_of(section, day))


async def test_a_stuck_paid_order_is_found_and_finalised(open_api, settings: Settings,
                                                         venue: VenueFixture,
                                                         redis_client: redis.Redis,
                                                         ledger_engine: Engine) -> None:
    async with open_api() as api:
        stuck = await buy(api, settings, venue.sections["Terrace"], 2, "stuck-fan", pay=False)
        recent = await buy(api, settings, venue.sections["Terrace"], 1, "recent-fan",
                           pay=False)
    set_paid(ledger_engine, stuck.order_id, minutes_ago=60)  # the worker died an hour ago
    set_paid(ledger_engine, recent.order_id, minutes_ago=1)  # may still be in the queue

    found = reconcile(settings, "--stuck-after", "15")
    assert (found.code, found.verdict) == (1, NOT_FIXED), found.out
    assert f"order {stuck.order_id}: paid, no tickets (status paid)" in found.out
    assert recent.order_id not in found.out

    fixed = reconcile(settings, "--fix", "--stuck-after", "15")
    assert (fixed.code, fixed.verdict) == (0, FIXED), fixed.out
    assert f"order {stuck.order_id}: paid, no tickets (status paid) -> completed" in fixed.out
    assert order_row(ledger_engine, stuck.order_id)["status"] == "completed"
    assert order_row(ledger_engine, recent.order_id)["status"] == "paid"  # left to its job
    assert ticket_count(ledger_engine, stuck.order_id) == 4
    assert_agrees(redis_client, ledger_engine, "Terrace", D19)


async def test_a_stripe_payment_without_its_webhook(open_api, stripe_settings: Settings,
                                                    venue: VenueFixture,
                                                    redis_client: redis.Redis,
                                                    ledger_engine: Engine) -> None:
    """The fan paid at Stripe and the webhook never came: the order is still pending. Only
    Stripe knows; reconcile asks it and completes the order."""
    async with open_api(stripe_settings) as api:
        order = await buy(api, stripe_settings, venue.sections["Mezzanine Right"], 2,
                          "stripe-fan", pay=False)
    intent_id = order_row(ledger_engine, order.order_id)["payment_intent_id"]
    assert intent_id.startswith("pi_")
    assert pay(stripe_client(stripe_settings.stripe_api_base), intent_id)["status"] == \
        "succeeded"
    assert order_row(ledger_engine, order.order_id)["status"] == "pending"

    found = reconcile(stripe_settings, "--stuck-after", "0")
    line = f"order {order.order_id}: paid at Stripe, no tickets (status pending)"
    assert (found.code, found.verdict) == (1, NOT_FIXED), found.out
    assert line in found.out
    assert "unknown order" not in found.out, found.out

    fixed = reconcile(stripe_settings, "--fix", "--stuck-after", "0")
    assert (fixed.code, fixed.verdict) == (0, FIXED), fixed.out
    assert f"{line} -> completed" in fixed.out
    row = order_row(ledger_engine, order.order_id)
    assert (row["status"], row["payment_intent_id"]) == ("completed", intent_id)
    assert ticket_count(ledger_engine, order.order_id) == 4
    assert_agrees(redis_client, ledger_engine, "Mezzanine Right", D19)

    # Money for an order the ledger never had: reported, and left to a person (exit 1 even
    # with --fix); a payment that is not ours (no amphitheater metadata) is not reported.
    sc = stripe_client(stripe_settings.stripe_api_base)
    intents = {}
    for name, metadata in (("orphan", {"amphitheater": "true", "order_id": str(uuid.uuid4())}),
                           ("foreign", {"shop": "merch"})):
        created = sc.v1.payment_intents.create(params={"amount": 4500, "currency": "usd",
                                                       "metadata": metadata})
        assert pay(sc, created.id)["status"] == "succeeded"
        intents[name] = created.id
    orphan = reconcile(stripe_settings, "--fix", "--stuck-after", "0")
    assert (orphan.code, orphan.verdict) == (1, "DRIFT; no oversold seat"), orphan.out
    assert f"order {intents['orphan']}: paid at Stripe, unknown order (status -)" in orphan.out
    assert intents["foreign"] not in orphan.out
    assert order.order_id not in orphan.out  # completed: no longer a problem
    assert orphan.out.count("  ok\n") == BLOCKS, orphan.out


def test_a_block_bigger_in_redis_than_in_the_ledger(settings: Settings, venue: VenueFixture,
                                                     redis_client: redis.Redis) -> None:
    """The Lawn counts 1600 places in Redis, 1500 in the ledger: 100 fans too many could
    buy. Reported, and left for a person: a rebuild does not change a block's geometry."""
    lawn = block_of("Lawn", D21)
    redis_client.hset(lawn.meta, "capacity", 1600)
    redis_client.hset(block_of("Terrace", D21).meta, "held", 4)  # fixable drift beside it
    before = redis_snapshot(redis_client)[lawn.meta.encode()]

    run = reconcile(settings, "--fix")
    assert (run.code, run.verdict) == (1, "DRIFT; no oversold seat"), run.out
    assert run.block_row(D21, "lawn")[-4:] == ["geometry", "->", "NOT", "FIXED"], run.out
    assert "ga of 1600 seats, ledger says ga of 1500 seats" in run.finding(D21, "lawn",
                                                                          "geometry")
    assert run.block_row(D21, "terrace")[-3:] == ["held_counter", "->", "fixed"], run.out
    assert redis_snapshot(redis_client)[lawn.meta.encode()] == before  # untouched


def test_a_block_with_other_rows_does_not_stop_the_run(settings: Settings,
                                                        venue: VenueFixture,
                                                        redis_client: redis.Redis,
                                                        ledger_engine: Engine) -> None:
    """Terrace has 30 rows of 50 in the ledger and 10 of 150 in Redis (same capacity), and a
    wrong counter: rebuilding would remap seats, so it is left for a person. The run says
    so and goes on with every other block and with the stuck orders."""
    terrace = block_of("Terrace", D20)
    redis_client.hset(terrace.meta, mapping={"rows": 10, "seats_per_row": 150, "held": 2})
    redis_client.hset(block_of("Lawn", D21).meta, "sold", 9)  # a later block, fixable
    run = reconcile(settings, "--fix")
    assert (run.code, run.verdict) == (1, "DRIFT; no oversold seat"), run.out
    assert run.block_row(D20, "terrace")[-4:] == ["geometry", "->", "NOT", "FIXED"], run.out
    assert ("reserved of 1500 seats (10 rows of 150), ledger says reserved of 1500 seats "
            "(30 rows of 50)") in run.finding(D20, "terrace", "geometry")
    assert run.block_row(D21, "lawn")[-3:] == ["sold_counter", "->", "fixed"], run.out
    assert redis_client.hget(terrace.meta, "held") == b"2"  # left for a person
    assert_agrees(redis_client, ledger_engine, "Lawn", D21)
