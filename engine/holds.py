"""Where a hold is made, looked up and released: the async hot path over the Lua scripts.

Its value types are in `engine/hold_types.py`, the scripts' wire format in
`engine/codecs.py` (refusals too), the hold-id scheme in `engine/hold_ids.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any

from amphi import errors, keys
from engine import scripts
from engine.codecs import (
    accessible_args,
    block_keys,
    create_args,
    encoded_block_keys,
    hold_tail,
    parse_block_ref,
    parse_counts,
    parse_offer,
    parse_record,
    picks_arg,
    text,
    time_ms,
)
from engine.hold_ids import IDEMPOTENCY_WINDOW_S, block_prefix, new_hold_id
from engine.hold_types import (
    RECLAIM_LIMIT,
    TOMBSTONE_MS,
    Accessible,
    BlockCounts,
    Hold,
    Offer,
    SeatMap,
)
from engine.transport.autopipeline import AutoPipeline

INDEX_MARGIN_MS = 60_000  # a holder's index outlives their newest hold by this


def _check_choice(picks: list[int] | None, accessible: Accessible | None,
                  quantity: int) -> None:
    if picks is not None and (picks != sorted(set(picks)) or len(picks) != quantity):
        raise ValueError("picks: `quantity` distinct seat indices in ascending order")
    if accessible is not None and (picks is not None or accessible.seats != quantity):
        raise ValueError("accessible: no picks, and `quantity` the seats it makes")


# -- the async service ------------------------------------------------------------------
class HoldEngine:
    """The hot path. One per API process, built in the lifespan around a shared client."""

    def __init__(
        self,
        client: scripts.AsyncClient,
        *,
        ttl_seconds: int,
        max_quantity: int,
        max_active_per_owner: int,
        rate_limit_per_minute: int,
        id_secret: bytes = b"",
        autopipeline: bool = True,
        observe_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.client = client
        # Scripts go through the auto-pipeline; the rare reads (a hold, the clock) do not.
        self.pipeline = AutoPipeline(client, observe=observe_batch) if autopipeline else None
        self.ttl_ms = ttl_seconds * 1000
        self.max_quantity = max_quantity
        self.max_active = max_active_per_owner
        self.rate_limit = rate_limit_per_minute
        self.id_secret = id_secret  # keys the hash that turns an Idempotency-Key into an id
        self._tail = hold_tail(self.ttl_ms, max_active_per_owner, rate_limit_per_minute)
        self._blocks: dict[bytes, keys.BlockKeys] = {}  # hold id prefix -> block

    def _check_quantity(self, quantity: int) -> None:
        if not 1 <= quantity <= self.max_quantity:
            raise errors.InvalidRequest(
                f"quantity must be between 1 and {self.max_quantity}", field="quantity"
            )

    async def availability(self, blocks: list[keys.BlockKeys]) -> list[BlockCounts | None]:
        """Counters of several blocks in one round trip (expired holds reclaimed first)."""
        args = (RECLAIM_LIMIT, TOMBSTONE_MS)
        replies = await scripts.arun_each(
            self.client, "availability", [(block_keys(block), args) for block in blocks]
        )
        return [parse_counts(r) for r in replies]

    async def seat_map(self, block: keys.BlockKeys) -> SeatMap | None:
        """A block's seats (expired holds reclaimed first; none for general admission); None
        when Redis does not have the block."""
        reply = await scripts.arun(self.client, "seat_map", block_keys(block),
                                   [RECLAIM_LIMIT], via=self.pipeline)
        if reply[0] == -1:
            return None
        return SeatMap(int(reply[1]), text(reply[2]) == "1", text(reply[3]))

    async def missing(self, blocks: list[keys.BlockKeys]) -> list[keys.BlockKeys]:
        """The blocks Redis does not have (their meta key is gone), in one round trip
        (`engine.blocks.missing` for synchronous callers)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for block in blocks:
                pipe.exists(block.meta)
            found = await pipe.execute()
        return [b for b, n in zip(blocks, found, strict=True) if not n]

    async def check(
        self, block: keys.BlockKeys, quantity: int, *, allow_split: bool = False,
        picks: list[int] | None = None, accessible: Accessible | None = None,
    ) -> Offer:
        self._check_quantity(quantity)
        _check_choice(picks, accessible, quantity)
        reply = await scripts.arun(
            self.client,
            "create_hold",
            block_keys(block),
            ["check", quantity, 0, "", "", int(allow_split), "check", RECLAIM_LIMIT,
             self.max_active, 0, 0, "", picks_arg(picks), *accessible_args(accessible)],
            via=self.pipeline,
        )
        return parse_offer(reply, quantity)

    async def create(
        self,
        block: keys.BlockKeys,
        quantity: int,
        *,
        owner: str,
        client: str,
        idempotency_key: str | None = None,
        allow_split: bool = False,
        picks: list[int] | None = None,
        accessible: Accessible | None = None,
        holder: str | None = None,
    ) -> Hold:
        """Hold `quantity` best-available seats for `client` in one script call, or the seats
        at `picks` (indices, as many as `quantity`), or the wheelchair spaces `accessible`
        asks for (`quantity` its seats), all or none; raises a DomainError if not. A retry
        with the same Idempotency-Key returns the same hold. `holder` (see `holds_of`) finds
        it again; its index is written in the same round trip."""
        self._check_quantity(quantity)
        _check_choice(picks, accessible, quantity)
        if idempotency_key:
            window = int(time.time()) // IDEMPOTENCY_WINDOW_S
            ids = [new_hold_id(block, client=client, idempotency_key=idempotency_key,
                               secret=self.id_secret, window=w) for w in (window, window - 1)]
        else:
            ids = [new_hold_id(block), ""]
        script = scripts.arun(
            self.client,
            "create_hold",
            encoded_block_keys(block),
            # a pick is the seats picked: splitting means nothing to it
            create_args(ids[0], quantity, owner=owner, client=client,
                        allow_split=allow_split and picks is None,
                        tail=self._tail, keyed=bool(idempotency_key), previous_id=ids[1],
                        picks=picks, accessible=accessible),
            via=self.pipeline,
        )
        if holder:
            reply, _ = await asyncio.gather(script, self._index(holder, ids[0]))
        else:
            reply = await script
        offer = parse_offer(reply, quantity)
        code = int(reply[0])
        if code != 1:  # 2 or 3: a retry, answered with the hold it made
            return await self.get(ids[code - 2])
        return Hold(
            hold_id=ids[0],
            event_date=block.event_date,
            section=block.section,
            status="active",
            owner=owner,
            client=client,
            quantity=quantity,
            price_cents=offer.price_cents,
            seats=offer.seats,
            expires_ms=offer.expires_ms,
            created_ms=offer.expires_ms - self.ttl_ms,
            accessible=accessible.spaces if accessible else 0,
        )

    async def _index(self, holder: str, hold_id: str) -> None:
        """Adds a hold id to its holder's index (before the hold is known to exist: `holds_of`
        drops an id whose hold does not); the index outlives the newest hold in it."""
        key, ttl = keys.holder_holds(holder), self.ttl_ms + INDEX_MARGIN_MS
        if self.pipeline is not None:
            await asyncio.gather(self.pipeline.execute_command("SADD", key, hold_id),
                                 self.pipeline.execute_command("PEXPIRE", key, ttl))
            return
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.sadd(key, hold_id)
            pipe.pexpire(key, ttl)
            await pipe.execute()

    async def holds_of(self, holder: str) -> tuple[list[Hold], int]:
        """The active holds `holder` made ('user:<id>', or 'guest:<guest id>'), earliest
        expiry first, and Redis's clock now (ms). Two round trips, and one more to drop the
        ids of holds that are over."""
        key = keys.holder_holds(holder)
        ids = sorted(text(i) for i in await self.client.smembers(key))
        located: list[tuple[str, keys.BlockKeys]] = []
        for hold_id in ids:
            with contextlib.suppress(errors.HoldNotFound):
                located.append((hold_id, await self.locate(hold_id)))
        raws, now = await asyncio.gather(self._records(located), self.now_ms())
        holds = [parse_record(hold_id, block, raw)
                 for (hold_id, block), raw in zip(located, raws, strict=True) if raw]
        active = [h for h in holds if h.status == "active" and h.expires_ms > now]
        over = set(ids) - {h.hold_id for h in active}
        if over:
            await self.client.srem(key, *over)
        return sorted(active, key=lambda h: (h.expires_ms, h.hold_id)), now

    async def _records(self, holds: list[tuple[str, keys.BlockKeys]]) -> list[Any]:
        """The records of holds in their blocks, in one round trip (a node each on a
        cluster, where a pipeline takes no keyless TIME)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for hold_id, block in holds:
                pipe.hget(block.records, hold_id)
            return list(await pipe.execute())

    async def locate(self, hold_id: str) -> keys.BlockKeys:
        """The block a hold id names (see `new_hold_id`)."""
        try:
            prefix = uuid.UUID(hold_id).bytes[:5]
        except ValueError:
            raise errors.HoldNotFound() from None
        if prefix not in self._blocks:
            refs = await self.client.smembers(keys.blocks_index())
            self._blocks = {block_prefix(b): b for b in map(parse_block_ref, refs)}
        try:
            return self._blocks[prefix]
        except KeyError:
            raise errors.HoldNotFound() from None

    async def get(self, hold_id: str) -> Hold:
        block = await self.locate(hold_id)
        raw = await self.client.hget(block.records, hold_id)
        if raw is None:
            raise errors.HoldNotFound()
        return parse_record(hold_id, block, raw)

    async def now_ms(self) -> int:
        return time_ms(await self.client.time())

    async def get_with_time(self, hold_id: str) -> tuple[Hold, int]:
        """The hold and Redis's clock now (ms): its record and the time in one round trip
        where the auto-pipeline runs, for callers that judge whether it is still live."""
        block = await self.locate(hold_id)
        if self.pipeline is None:
            raw, now = await self.client.hget(block.records, hold_id), await self.client.time()
        else:
            raw, now = await asyncio.gather(
                self.pipeline.execute_command("HGET", block.records, hold_id),
                self.pipeline.execute_command("TIME"))
        if raw is None:
            raise errors.HoldNotFound()
        return parse_record(hold_id, block, raw), time_ms(now)

    async def release(self, hold_id: str, *, requester: str, force: bool = False) -> Hold:
        """Release an active hold. `requester` is the caller's user id ('' for a guest);
        `force` (the box office) releases it whoever owns it."""
        block = await self.locate(hold_id)
        reply = await scripts.arun(
            self.client, "release_hold", block_keys(block), [hold_id, requester, int(force)],
            via=self.pipeline,
        )
        if int(reply[0]) == 0:
            reason = text(reply[1])
            if reason == "not_found":
                raise errors.HoldNotFound()
            if reason == "forbidden":
                raise errors.Forbidden("This hold belongs to another account.")
            raise errors.HoldNotActive(
                f"This seat hold is already {text(reply[2])}.", status=text(reply[2])
            )
        return await self.get(hold_id)
