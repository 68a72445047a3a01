"""The engine's client packs commands with hiredis (engine/transport/connection.py): byte
for byte what redis-py's own packer sends, and redis-py's errors for what it refuses. Pure:
no server."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aredis
from redis.exceptions import DataError

from engine.transport.connection import HiredisPackingConnection

CASES: list[tuple[Any, ...]] = [
    ("EVALSHA", "a" * 40, 6, b"{blk}:meta", "0", 2, b"600000", "", "café", b"\x00\xff"),
    ("SET", "k", 0.1, 1e20, 1 / 3, 1e-7, 2.0, -5, 10**30),
    ("SET", "k", memoryview(b"view")),
    ("SCRIPT LOAD", "return 1"),  # a two-word name: redis-py splits it
    ("HGET", "k", ""),
]


@pytest.mark.parametrize("args", CASES, ids=[c[0] + str(i) for i, c in enumerate(CASES)])
def test_hiredis_packs_as_redis_py_does(args: tuple[Any, ...]) -> None:
    ours = b"".join(bytes(p) for p in HiredisPackingConnection().pack_command(*args))
    theirs = b"".join(bytes(p) for p in aredis.Connection().pack_command(*args))
    assert ours == theirs


@pytest.mark.parametrize("bad", [None, True, {"a": 1}])
def test_what_redis_py_refuses_is_refused_alike(bad: Any) -> None:
    with pytest.raises(DataError):
        aredis.Connection().pack_command("SET", "k", bad)
    with pytest.raises(DataError):
        HiredisPackingConnection().pack_command("SET", "k", bad)
