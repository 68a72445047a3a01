"""Where a hold is made, looked up and released: the async hot path over the Lua scripts.

Its value types are in `engine/hold_types.py`, the scripts' wire format in
`engine/codecs.py` (refusals too), the hold-id scheme in `engine/hold_ids.py`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

from amphi import errors, keys
from engine import scripts
from engine.codecs import (
    block_keys,
    create_args,
    encoded_block_keys,
    hold_tail,
    parse_block_ref,
    parse_counts,
    parse_offer,
    parse_record,
    text,
    time_ms,
)
from engine.hold_ids import IDEMPOTENCY_WINDOW_S, block_prefix, new_hold_id
from engine.hold_types import RECLAIM_LIMIT, TOMBSTONE_MS, BlockCounts, Hold, Offer
from engine.transport.autopipeline import AutoPipeline


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

    async def missing(self, blocks: list[keys.BlockKeys]) -> list[keys.BlockKeys]:
        """The blocks Redis does not have (their meta key is gone), in one round trip
        (`engine.blocks.missing` for synchronous callers)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for block in blocks:
                pipe.exists(block.meta)
            found = await pipe.execute()
        return [b for b, n in zip(blocks, found, strict=True) if not n]

    async def check(
        self, block: keys.BlockKeys, quantity: int, *, allow_split: bool = False
    ) -> Offer:
        self._check_quantity(quantity)
        reply = await scripts.arun(
            self.client,
            "create_hold",
            block_keys(block),
            ["check", quantity, 0, "", "", int(allow_split), "check", RECLAIM_LIMIT,
             self.max_active, 0, 0, ""],
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
    ) -> Hold:
        """Hold `quantity` best-available seats for `client` in one script call; raises a
        DomainError if not. A retry with the same Idempotency-Key returns the same hold."""
        self._check_quantity(quantity)
        if idempotency_key:
            window = int(time.time()) // IDEMPOTENCY_WINDOW_S
            ids = [new_hold_id(block, client=client, idempotency_key=idempotency_key,
                               secret=self.id_secret, window=w) for w in (window, window - 1)]
        else:
            ids = [new_hold_id(block), ""]
        reply = await scripts.arun(
            self.client,
            "create_hold",
            encoded_block_keys(block),
            create_args(ids[0], quantity, owner=owner, client=client, allow_split=allow_split,
                        tail=self._tail, keyed=bool(idempotency_key), previous_id=ids[1]),
            via=self.pipeline,
        )
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
        )

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
