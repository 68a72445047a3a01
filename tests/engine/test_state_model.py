"""A hypothesis state machine drives HoldEngine (create, idempotent retry, picked seats,
accessible holds, check, release, expiry, sweep, availability, on/off sale, the box office
releasing the wheelchair spaces) against a plain reference model; after every step Redis
must equal the model: seat map, counters, active holds, statuses.

Time passing is simulated the way it acts on Redis: a hold's score in the block's holds
zset and its record's `expires_ms` move into the past (`force_expire`). The engine must
then treat it as expired wherever it looks, and stop counting it against its client.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field

import redis
from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from amphi import errors, keys
from amphi.accessible import AccessiblePair, choose_pairs, parse_pairs, usable, withhold
from amphi.block_spec import BlockSpec
from amphi.geometry import Geometry
from amphi.settings import Settings
from engine import blocks
from engine.best_available import choose_seats
from engine.codecs import block_keys
from engine.hold_types import Accessible, Hold
from tests.engine._support import (
    block_state,
    engine_client,
    force_expire,
    ga_spec,
    make_engine,
    new_block,
    reserved_spec,
    state_violations,
)

ROWS, SPR = 4, 8
RESERVED_SOLD = (0, 13, 27)
# wheelchair spaces with companions: one in the front row's centre, where best available
# would sit a party first, and two at the back row's ends
PAIRS = parse_pairs("A4+A5, D1+D2, D8+D7", Geometry(ROWS, SPR))
GA_CAPACITY, GA_SOLD = 20, 2
MAX_ACTIVE = 3
# client -> (owner, the one block it buys in). Each client sticks to one block, so the
# model holds whether the engine caps a client's holds (and scopes its Idempotency-Keys)
# per block or across blocks; test_holds_api covers the cross-block cases.
CLIENTS = {
    "user:a": ("user:a", "res"),
    "user:c": ("user:c", "res"),
    "guest:1": ("", "res"),
    "user:b": ("user:b", "ga"),
    "guest:2": ("", "ga"),
}


@dataclass
class MHold:
    hold_id: str
    block: str  # "res" | "ga"
    client: str
    owner: str
    qty: int
    seats: list[int]
    status: str = "active"  # active | released | expired
    past_due: bool = False  # expiry forced, not yet noticed by the engine


@dataclass
class MBlock:
    keys: keys.BlockKeys
    spec: BlockSpec
    sold: int
    base: str = ""  # reserved: the seat map with only the sold seats
    active: bool = True
    pairs: tuple[AccessiblePair, ...] = ()
    released: bool = False  # the wheelchair spaces are on general sale


@dataclass
class Model:
    blocks: dict[str, MBlock] = field(default_factory=dict)
    holds: list[MHold] = field(default_factory=list)
    idem: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)

    def live(self, block: str | None = None) -> list[MHold]:
        return [h for h in self.holds if h.status == "active"
                and (block is None or h.block == block)]

    def seat_map(self, block: str) -> str:
        b = self.blocks[block]
        seats = list(b.base)
        for h in self.live(block):
            for i in h.seats:
                assert seats[i] == "0", "model bug: seat taken twice"
                seats[i] = "H"
        # the free seats of the pairs are withheld until released
        return withhold("".join(seats), () if b.released else b.pairs)

    def held(self, block: str) -> int:
        return sum(h.qty for h in self.live(block))

    def withheld(self, block: str) -> int:
        seat_map = self.seat_map(block) if block == "res" else ""
        return seat_map.count("W") + seat_map.count("C")

    def available(self, block: str) -> int:
        b = self.blocks[block]
        return b.spec.capacity - b.sold - self.held(block) - self.withheld(block)

    def reclaim(self, block: str) -> int:
        freed = 0
        for h in self.live(block):
            if h.past_due:
                h.status, h.past_due = "expired", False
                freed += h.qty
        return freed

    def counted(self, client: str) -> int:
        return sum(1 for h in self.live() if h.client == client and not h.past_due)


class HoldMachine(RuleBasedStateMachine):
    def __init__(self, url: str, sync: redis.Redis) -> None:
        super().__init__()
        self.sync = sync
        self.loop = asyncio.new_event_loop()
        self.aclient = engine_client(url)
        self.engine = make_engine(self.aclient, max_active=MAX_ACTIVE)
        self.model = Model()
        res = new_block("model-res")
        ga = new_block("model-ga")
        res_spec = dataclasses.replace(reserved_spec(res, ROWS, SPR), accessible=PAIRS)
        ga_spec_ = ga_spec(ga, GA_CAPACITY)
        assert blocks.load_block(sync, res_spec, list(RESERVED_SOLD)) == "created"
        assert blocks.load_block(sync, ga_spec_, GA_SOLD) == "created"
        base = "".join("S" if i in RESERVED_SOLD else "0" for i in range(ROWS * SPR))
        self.model.blocks["res"] = MBlock(res, res_spec, len(RESERVED_SOLD), base,
                                          pairs=PAIRS)
        self.model.blocks["ga"] = MBlock(ga, ga_spec_, GA_SOLD)
        # each example gets fresh client identities, so owner limits start empty
        self.prefix = res.section

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def who(self, client: str) -> str:
        return f"{client}:{self.prefix}"

    def owner_of(self, client: str) -> str:
        return self.who(client) if CLIENTS[client][0] else ""

    def follow_reclaim(self, block: str) -> None:
        """A call that may or may not have passed through the block (and so reclaimed
        its expired holds): follow what Redis did, all or nothing, only when on sale."""
        m, b = self.model, self.model.blocks[block]
        due = [h for h in m.live(block) if h.past_due]
        if not due:
            return
        recs = block_state(self.sync, b.keys).records
        done = [h for h in due if recs[h.hold_id]["status"] == "expired"]
        assert len(done) in (0, len(due)), "a partial reclaim"
        if done:
            assert b.active, "a block off sale reclaimed on a create"
            m.reclaim(block)

    def teardown(self) -> None:
        for b in self.model.blocks.values():
            k = b.keys
            self.sync.delete(*block_keys(k))
            self.sync.srem(keys.blocks_index(), f"{k.event_date.isoformat()}|{k.section}")
        self.run(self.aclient.aclose())
        self.loop.close()

    def hold(self, block: str, qty: int, client: str, key: str | None,
             **choice: object) -> Hold | errors.DomainError:
        """The engine's answer to a hold request of `client` in `block`: a hold or a refusal."""
        try:
            return self.run(self.engine.create(
                self.model.blocks[block].keys, qty, owner=self.owner_of(client),
                client=self.who(client), idempotency_key=key, **choice))
        except errors.DomainError as exc:
            return exc

    def remember(self, got: Hold, block: str, client: str, key: str | None, fp: str) -> None:
        """A new hold, checked against the model before: the model holds it too."""
        self.model.holds.append(MHold(got.hold_id, block, client, self.owner_of(client),
                                      got.quantity, list(got.seats)))
        if key is not None:
            self.model.idem[(client, key)] = (got.hold_id, fp)

    def answered_before_seats(self, block: str, got: Hold | errors.DomainError, client: str,
                              key: str | None, fp: str) -> bool:
        """Checks the answers that come before any seat is looked at: a retried key (the
        same hold as the model has it, or a mismatch for another request), the client's cap
        and a block off sale. True if `got` was one of them; otherwise the model reclaims
        the block's expired holds, as the script did before choosing seats."""
        m, b = self.model, self.model.blocks[block]
        if key is not None and (client, key) in m.idem:  # a retry
            self.follow_reclaim(block)
            hold_id, seen_fp = m.idem[(client, key)]
            if not b.active and isinstance(got, errors.NotOnSale):
                return True  # refused while off sale: tolerable, nothing may change
            if seen_fp != fp:
                assert isinstance(got, errors.IdempotencyMismatch), got
                return True
            assert isinstance(got, Hold), got
            h = next(h for h in m.holds if h.hold_id == hold_id)
            assert got.hold_id == h.hold_id and got.seats == h.seats
            # the record as it is: a past-due hold not yet reclaimed still says active
            assert got.status == ("active" if h.past_due else h.status)
            return True
        at_cap = m.counted(client) >= MAX_ACTIVE
        if at_cap or not b.active:
            # either refusal may come first when both apply
            allowed = (errors.TooManyHolds,) * at_cap + (errors.NotOnSale,) * (not b.active)
            assert isinstance(got, allowed), got
            self.follow_reclaim(block)
            return True
        m.reclaim(block)
        return False

    # -- rules ---------------------------------------------------------------------------------
    @rule(qty=st.integers(1, 8), allow_split=st.booleans(),
          client=st.sampled_from(sorted(CLIENTS)), key=st.sampled_from([None, None, "k1", "k2"]))
    def create(self, qty: int, allow_split: bool, client: str, key: str | None) -> None:
        block = CLIENTS[client][1]
        m = self.model
        fp = f"{block}|{qty}|{int(allow_split)}"
        got = self.hold(block, qty, client, key, allow_split=allow_split)

        if self.answered_before_seats(block, got, client, key, fp):
            return
        available = m.available(block)
        if available < qty:
            assert isinstance(got, errors.SoldOut), got
            assert got.details["available"] == available
            return
        expected: list[int] | None = []
        if block == "res":
            expected = choose_seats(m.seat_map(block), SPR, qty, allow_split=allow_split)
            if expected is None:
                assert isinstance(got, errors.NoAdjacentSeats), got
                return
        assert isinstance(got, Hold), got
        assert got.seats == expected
        assert got.quantity == qty and got.status == "active"
        self.remember(got, block, client, key, fp)

    @rule(seats=st.sets(st.integers(0, ROWS * SPR - 1), min_size=1, max_size=4),
          client=st.sampled_from([c for c, (_, b) in CLIENTS.items() if b == "res"]),
          key=st.sampled_from([None, None, "k1", "k2"]))
    def pick(self, seats: set[int], client: str, key: str | None) -> None:
        """A fan picks seats: all of them or none, and never one that is held or sold."""
        m = self.model
        picks = sorted(seats)
        fp = f"res|{len(picks)}|pick:{picks}"
        got = self.hold("res", len(picks), client, key, picks=picks)
        if self.answered_before_seats("res", got, client, key, fp):
            return
        seat_map = m.seat_map("res")
        taken = [i for i in picks if seat_map[i] != "0"]
        if taken:
            assert isinstance(got, errors.SeatsUnavailable), got
            assert got.details["seat_indices"] == taken
            return
        assert isinstance(got, Hold), got
        assert got.seats == picks and got.quantity == len(picks) and got.status == "active"
        self.remember(got, "res", client, key, fp)

    @rule(spaces=st.integers(1, 3), companions=st.booleans(),
          client=st.sampled_from([c for c, (_, b) in CLIENTS.items() if b == "res"]),
          key=st.sampled_from([None, None, "k1", "k2"]))
    def accessible(self, spaces: int, companions: bool, client: str, key: str | None) -> None:
        """A fan asks for wheelchair spaces: the first usable pairs, or none at all."""
        m, b = self.model, self.model.blocks["res"]
        ask = Accessible(spaces, companions)
        fp = f"res|{ask.seats}|acc:{spaces}:{int(companions)}"
        got = self.hold("res", ask.seats, client, key, accessible=ask)
        if self.answered_before_seats("res", got, client, key, fp):
            return
        seat_map = m.seat_map("res")
        expected = choose_pairs(seat_map, b.pairs, spaces, companions)
        if expected is None:
            assert isinstance(got, errors.AccessibleUnavailable), got
            assert got.details["available"] == sum(usable(seat_map, p, companions)
                                                   for p in b.pairs)
            return
        assert isinstance(got, Hold), got
        assert got.seats == expected and got.accessible == spaces, got
        self.remember(got, "res", client, key, fp)

    @precondition(lambda self: not self.model.blocks["res"].released)
    @rule()
    def box_office_releases_the_spaces(self) -> None:
        b = self.model.blocks["res"]
        b.spec = dataclasses.replace(b.spec, accessible_released=True)
        assert blocks.load_block(self.sync, b.spec) == "refreshed"
        b.released = True

    @rule(block=st.sampled_from(["res", "ga"]), qty=st.integers(1, 8),
          allow_split=st.booleans())
    def check(self, block: str, qty: int, allow_split: bool) -> None:
        m, b = self.model, self.model.blocks[block]
        try:
            got = self.run(self.engine.check(b.keys, qty, allow_split=allow_split))
        except errors.DomainError as exc:
            got = exc
        if not b.active:
            assert isinstance(got, errors.NotOnSale), got
            return
        m.reclaim(block)
        if m.available(block) < qty:
            assert isinstance(got, errors.SoldOut), got
            return
        if block == "res":
            expected = choose_seats(m.seat_map(block), SPR, qty, allow_split=allow_split)
            if expected is None:
                assert isinstance(got, errors.NoAdjacentSeats), got
                return
            assert not isinstance(got, errors.DomainError), got
            assert got.seats == expected
        else:
            assert not isinstance(got, errors.DomainError), got
            assert got.seats == []

    @precondition(lambda self: self.model.holds)
    @rule(pick=st.integers(0, 10_000), by_owner=st.booleans(),
          other=st.sampled_from(sorted(CLIENTS)))
    def release(self, pick: int, by_owner: bool, other: str) -> None:
        h = self.model.holds[pick % len(self.model.holds)]
        requester = self.owner_of(h.client) if by_owner else self.owner_of(other)
        try:
            got: Hold | errors.DomainError = self.run(
                self.engine.release(h.hold_id, requester=requester))
        except errors.DomainError as exc:
            got = exc
        owner = self.owner_of(h.client)
        if owner and owner != requester:
            assert isinstance(got, errors.Forbidden), got
            return
        if h.status != "active":
            assert isinstance(got, errors.HoldNotActive), got
            assert got.details["status"] == h.status
            return
        if h.past_due:
            assert isinstance(got, errors.HoldNotActive), got
            assert got.details["status"] == "expired"
            h.status, h.past_due = "expired", False
            return
        assert isinstance(got, Hold), got
        assert got.status == "released"
        h.status = "released"

    @precondition(lambda self: any(not h.past_due for h in self.model.live()))
    @rule(pick=st.integers(0, 10_000))
    def time_passes_for_one_hold(self, pick: int) -> None:
        candidates = [h for h in self.model.live() if not h.past_due]
        h = candidates[pick % len(candidates)]
        force_expire(self.sync, self.model.blocks[h.block].keys, h.hold_id)
        h.past_due = True

    @rule()
    def sweep(self) -> None:
        # any other block in the index is swept too: count ours only
        before = {n: self.model.held(n) for n in self.model.blocks}
        blocks.sweep(self.sync)
        for name in self.model.blocks:
            freed = self.model.reclaim(name)
            assert before[name] - self.model.held(name) == freed

    @rule()
    def availability(self) -> None:
        names = ["res", "ga"]
        got = self.run(self.engine.availability([self.model.blocks[n].keys for n in names]))
        for name, counts in zip(names, got, strict=True):
            self.model.reclaim(name)
            b = self.model.blocks[name]
            assert counts is not None
            assert (counts.capacity, counts.held, counts.sold, counts.active) == (
                b.spec.capacity, self.model.held(name), b.sold, b.active)
            seat_map = self.model.seat_map(name) if name == "res" else ""
            assert (counts.withheld, counts.wheelchair_free) == (
                self.model.withheld(name), sum(usable(seat_map, p, False) for p in b.pairs))

    @rule(block=st.sampled_from(["res", "ga"]), active=st.booleans())
    def set_on_sale(self, block: str, active: bool) -> None:
        b = self.model.blocks[block]
        b.spec = dataclasses.replace(b.spec, active=active)
        assert blocks.load_block(self.sync, b.spec) == "refreshed"
        b.active = active

    # -- after every step ----------------------------------------------------------------------
    @invariant()
    def redis_matches_the_model(self) -> None:
        m = self.model
        for name, b in m.blocks.items():
            st_ = block_state(self.sync, b.keys)
            bad = state_violations(st_)
            assert not bad, bad
            assert int(st_.meta["held"]) == m.held(name)
            assert int(st_.meta["sold"]) == b.sold
            assert int(st_.meta.get("withheld", 0)) == m.withheld(name)
            assert st_.meta["active"] == ("1" if b.active else "0")
            if name == "res":
                assert st_.seats == m.seat_map(name)
            assert set(st_.active) == {h.hold_id for h in m.live(name)}
            for h in m.holds:
                if h.block == name:
                    assert st_.records[h.hold_id]["status"] == h.status, h


MACHINE_SETTINGS = hsettings(
    max_examples=60, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_engine_matches_the_reference_model(settings: Settings,
                                            redis_client: redis.Redis) -> None:
    run_state_machine_as_test(
        lambda: HoldMachine(settings.redis_url, redis_client),
        settings=MACHINE_SETTINGS,
    )

