"""The hold-id scheme: ids that name their block, and idempotent ids for retried requests."""

from __future__ import annotations

import functools
import hashlib
import os

from amphi import keys
from engine.codecs import block_ref


@functools.lru_cache(maxsize=4096)
def block_prefix(block: keys.BlockKeys) -> bytes:
    return hashlib.blake2b(block_ref(block).encode(), digest_size=5).digest()


IDEMPOTENCY_WINDOW_S = 3600  # no longer than TOMBSTONE_MS: see new_hold_id


def new_hold_id(block: keys.BlockKeys, *, client: str = "", idempotency_key: str | None = None,
                secret: bytes = b"", window: int = 0) -> str:
    """A UUID (version 8) whose first 40 bits name the block, so that a hold id alone finds
    its hold without a pointer key. The other 82 bits are random or, for a request with an
    Idempotency-Key, a keyed hash of the client, the key and the hour (`window`): a retry
    names the same hold, and create_hold.lua, idempotent per hold id, returns it. Within an
    hour of a hold its record (or tombstone) still exists, so the key is recognised; a key
    used again in a later hour makes a new id, so an id never names two holds."""
    if idempotency_key:
        tail = hashlib.blake2b(f"{client}\n{idempotency_key}\n{window}".encode(),
                               key=secret[:64], digest_size=11).digest()
    else:
        tail = os.urandom(11)
    raw = bytearray(block_prefix(block) + tail)
    raw[6] = (raw[6] & 0x0F) | 0x80  # version 8
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()  # str(uuid.UUID(bytes=raw)), without building the UUID object
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
