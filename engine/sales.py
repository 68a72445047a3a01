"""Where held seats become sold: the wrappers of `lua/sell_hold.lua`. The request that
learns a payment succeeded sells the seats at once (`secure`: the webhook; a confirm
finalises in its own request), so a queue backlog can delay the tickets but never cost the
seats; finalisation sells again, which replays the same sale (`sell_each`, one round trip
for a batch of orders)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amphi import errors, keys
from engine import scripts
from engine.codecs import block_keys, text
from engine.hold_types import RECLAIM_LIMIT, TOMBSTONE_MS
from engine.transport.autopipeline import AutoPipeline


@dataclass(frozen=True, slots=True)
class Sale:
    mode: str  # "hold": the hold's seats; "same": its seats re-taken; "moved": other seats
    seats: list[int]
    replayed: bool = False


def parse_sale(reply: list[Any]) -> Sale | None:
    """None when the block has no seats left for this order (it must be refunded), or, for
    a `secure` call, when its hold had already ended."""
    code = int(reply[0])
    if code == 0:
        if text(reply[1]) == "no_block":
            # Redis lost the block (a flush): never refund for that. The job retries once
            # `amphi reconcile --fix` has rebuilt it from the ledger.
            raise errors.ServiceUnavailable("The seat block is not loaded in Redis.")
        return None
    return Sale(text(reply[1]), [int(i) for i in reply[2:]], replayed=code == 2)


@dataclass(frozen=True, slots=True)
class SaleRequest:
    """A paid order's claim on its block: its hold, and the seats that hold had."""
    block: keys.BlockKeys
    order_id: str
    hold_id: str
    quantity: int
    preferred: list[int]

    def call(self) -> tuple[list[str], list[Any]]:
        return ([*block_keys(self.block), self.block.sales],
                [self.order_id, self.hold_id, self.quantity, ",".join(map(str, self.preferred)),
                 RECLAIM_LIMIT, TOMBSTONE_MS])


def sell(client: scripts.Client, block: keys.BlockKeys, *, order_id: str, hold_id: str,
         quantity: int, preferred: list[int]) -> Sale | None:
    """Sell `order_id` its seats in `block`; running it again returns the same sale."""
    request = SaleRequest(block, order_id, hold_id, quantity, preferred)
    return parse_sale(scripts.run(client, "sell_hold", *request.call()))


def sell_each(client: scripts.Client,
              requests: list[SaleRequest]) -> list[Sale | errors.DomainError | None]:
    """Every request's sale in one round trip; a block Redis lost is an error in its place
    (only that order waits for the rebuild)."""
    replies = scripts.run_each(client, "sell_hold", [r.call() for r in requests])
    out: list[Sale | errors.DomainError | None] = []
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
        try:
            out.append(parse_sale(reply))
        except errors.ServiceUnavailable as exc:
            out.append(exc)
    return out


async def secure(client: scripts.AsyncClient, block: keys.BlockKeys, *, order_id: str,
                 hold_id: str, via: AutoPipeline | None = None) -> Sale | None:
    """Sell a paid order its hold's seats in the request that learnt of the payment, from
    the hold alone (no ledger read): from then a queue backlog can delay the tickets, never
    cost the seats. None when the hold had already ended: finalisation then applies the
    late-payment policy. Finalisation's sale replays this one."""
    request = SaleRequest(block, order_id, hold_id, 0, [])
    return parse_sale(await scripts.arun(client, "sell_hold", *request.call(), via=via))


def release_for_order(client: scripts.Client, block: keys.BlockKeys, hold_id: str) -> bool:
    """Release a hold whose payment failed, whoever holds it. False if it had ended."""
    reply = scripts.run(client, "release_hold", block_keys(block), [hold_id, "", 1])
    return int(reply[0]) == 1
