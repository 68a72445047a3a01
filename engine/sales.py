"""Where held seats become sold: the synchronous wrapper of `lua/sell_hold.lua`, called by
the order finalisation job once the payment is known to have succeeded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amphi import errors
from engine import keys, scripts
from engine.holds import RECLAIM_LIMIT, TOMBSTONE_MS, block_keys, text


@dataclass(frozen=True, slots=True)
class Sale:
    mode: str  # "hold": the hold's seats; "same": its seats re-taken; "moved": other seats
    seats: list[int]
    replayed: bool = False


def parse_sale(reply: list[Any]) -> Sale | None:
    """None when the block has no seats left for this order (it must be refunded)."""
    code = int(reply[0])
    if code == 0:
        if text(reply[1]) == "no_block":
            # Redis lost the block (a flush): never refund for that. The job retries once
            # `amphi reconcile --fix` has rebuilt it from the ledger.
            raise errors.ServiceUnavailable("The seat block is not loaded in Redis.")
        return None
    return Sale(text(reply[1]), [int(i) for i in reply[2:]], replayed=code == 2)


def sell(
    client: scripts.Client,
    block: keys.BlockKeys,
    *,
    order_id: str,
    hold_id: str,
    quantity: int,
    preferred: list[int],
) -> Sale | None:
    """Sell `order_id` its seats in `block`; running it again returns the same sale."""
    reply = scripts.run(
        client,
        "sell_hold",
        [*block_keys(block), block.sales],
        [order_id, hold_id, quantity, ",".join(map(str, preferred)), RECLAIM_LIMIT,
         TOMBSTONE_MS],
    )
    return parse_sale(reply)


def release_for_order(client: scripts.Client, block: keys.BlockKeys, hold_id: str) -> bool:
    """Release a hold whose payment failed, whoever holds it. False if it had ended."""
    reply = scripts.run(client, "release_hold", block_keys(block), [hold_id, "", 1])
    return int(reply[0]) == 1
