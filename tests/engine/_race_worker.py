"""Process bodies for tests/engine/test_race.py and test_pick_race.py (a module of its own so
'spawn' imports it).

Each process opens its own connection pool, warms it up, waits on a shared barrier and
then, at one instant shared by all of them, fires all its requests at once with asyncio.
Results go back as plain tuples.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import time
import traceback
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from datetime import date
from typing import Any

import pytest
import redis.asyncio as aredis

from amphi import errors, keys
from engine.best_available import choose_seats
from engine.hold_types import Accessible
from engine.holds import HoldEngine
from engine.transport.connection import async_client

POOL_SIZE = 200  # connections a process keeps; requests beyond that wait for one


def _client(url: str) -> aredis.Redis | aredis.RedisCluster:
    return async_client(url, max_connections=POOL_SIZE, timeout=60, socket_connect_timeout=30)


def _block(ref: tuple[str, str]) -> keys.BlockKeys:
    return keys.BlockKeys(date.fromisoformat(ref[0]), ref[1])


async def _warm_up(client: aredis.Redis | aredis.RedisCluster, n: int) -> None:
    """Open the pool's connections before the start signal, 50 at a time (on a cluster:
    n to every primary)."""
    if isinstance(client, aredis.RedisCluster):
        await client.initialize()
        for node in client.get_primaries():
            taken = [node.acquire_connection() for _ in range(n)]
            for i in range(0, n, 50):
                await asyncio.gather(*(conn.connect() for conn in taken[i:i + 50]))
            for conn in taken:
                node.release(conn)
        await client.ping()
        return
    pool = client.connection_pool
    conns = []
    for i in range(0, n, 50):
        conns += await asyncio.gather(*(pool.get_connection() for _ in range(min(50, n - i))))
    for conn in conns:
        await pool.release(conn)
    await client.ping()


def _engine_attempt(engine: HoldEngine, block: keys.BlockKeys, kind: str, tag: str,
                    rnd: random.Random, release_share: float):
    qty = rnd.randint(1, 8)
    allow_split = kind == "reserved" and rnd.random() < 0.15
    release = rnd.random() < release_share
    pause = rnd.random() * 0.05

    async def attempt() -> tuple:
        try:
            hold = await engine.create(block, qty, owner=tag, client=tag,
                                       allow_split=allow_split)
        except errors.SoldOut:
            return (kind, "sold_out", qty)
        except errors.NoAdjacentSeats:
            return (kind, "no_adjacent", qty)
        if release:
            await asyncio.sleep(pause)
            released = await engine.release(hold.hold_id, requester=tag)
            assert released.status == "released", released
            return (kind, "released", qty, hold.hold_id, hold.seats, allow_split)
        return (kind, "held", qty, hold.hold_id, hold.seats, allow_split)

    return attempt


DUPLICATES = 10  # shared (client, Idempotency-Key) pairs every process sends twice


def _duplicate_attempt(engine: HoldEngine, block: keys.BlockKeys, j: int):
    tag = f"user:dup-{j}"

    async def attempt() -> tuple:
        try:
            hold = await engine.create(block, 1 + j % 8, owner=tag, client=tag,
                                       idempotency_key=f"dup-{j}")
        except (errors.SoldOut, errors.NoAdjacentSeats) as exc:
            return ("dup", type(exc).__name__, j)
        return ("dup", "held", j, hold.hold_id, hold.seats)

    return attempt


async def _engine_main(url: str, reserved: tuple[str, str], ga: tuple[str, str], proc: int,
                       n_reserved: int, n_ga: int, seed: int) -> dict:
    client = _client(url)
    engine = HoldEngine(client, ttl_seconds=600, max_quantity=8, max_active_per_owner=4,
                        rate_limit_per_minute=0)
    rnd = random.Random(seed)
    attempts = [
        _engine_attempt(engine, _block(reserved), "reserved", f"user:p{proc}-r{i}", rnd, 0.15)
        for i in range(n_reserved)
    ] + [
        _engine_attempt(engine, _block(ga), "ga", f"user:p{proc}-g{i}", rnd, 0.15)
        for i in range(n_ga)
    ] + [
        _duplicate_attempt(engine, _block(reserved), j)
        for j in range(DUPLICATES) for _ in range(2)
    ]
    return await _fire(client, attempts, proc, rnd)


async def _fire(client: aredis.Redis | aredis.RedisCluster, attempts: list[Any], proc: int,
                rnd: random.Random) -> dict:
    """Shuffle the attempts, wait for the other processes, run them all at once."""
    rnd.shuffle(attempts)
    await _warm_up(client, min(POOL_SIZE, len(attempts)))
    started = _start_together()
    results = await asyncio.gather(*(a() for a in attempts), return_exceptions=True)
    finished = time.time()
    await client.aclose()
    out = [("error", "".join(traceback.format_exception(r))) if isinstance(r, BaseException)
           else r for r in results]
    return {"proc": proc, "pid": os.getpid(), "started": started, "finished": finished,
            "results": out}


# -- fans who pick their seats, racing each other and best available ------------------------
def _pick_attempt(engine: HoldEngine, block: keys.BlockKeys, tag: str, picks: list[int]):
    async def attempt() -> tuple:
        try:
            hold = await engine.create(block, len(picks), owner=tag, client=tag, picks=picks)
        except errors.SeatsUnavailable as exc:
            return ("pick", "unavailable", picks, exc.details["seat_indices"])
        return ("pick", "held", picks, hold.hold_id, hold.seats)

    return attempt


PICKS_EACH = 6  # each process sends every contested pick this many times, as other fans


async def _picker_main(url: str, reserved: tuple[str, str], proc: int,
                       contested: list[list[int]], n_best: int, seed: int) -> dict:
    """Every process sends every pick of `contested` (the same lists in each process,
    PICKS_EACH times) and `n_best` best-available holds, all at once."""
    client = _client(url)
    engine = HoldEngine(client, ttl_seconds=600, max_quantity=8, max_active_per_owner=4,
                        rate_limit_per_minute=0)
    rnd = random.Random(seed)
    block = _block(reserved)
    attempts = [_pick_attempt(engine, block, f"user:p{proc}-k{i}-{j}", picks)
                for i, picks in enumerate(contested) for j in range(PICKS_EACH)]
    attempts += [_engine_attempt(engine, block, "reserved", f"user:p{proc}-b{i}", rnd, 0.0)
                 for i in range(n_best)]
    return await _fire(client, attempts, proc, rnd)


# -- fans who ask for wheelchair spaces, racing pickers and best available -----------------
def _accessible_attempt(engine: HoldEngine, block: keys.BlockKeys, tag: str,
                        companions: bool):
    ask = Accessible(1, companions)

    async def attempt() -> tuple:
        try:
            hold = await engine.create(block, ask.seats, owner=tag, client=tag, accessible=ask)
        except errors.AccessibleUnavailable:
            return ("accessible", "unavailable", companions)
        return ("accessible", "held", companions, hold.hold_id, hold.seats)

    return attempt


async def _accessible_main(url: str, reserved: tuple[str, str], proc: int, n_asks: int,
                           contested: list[list[int]], n_best: int, seed: int) -> dict:
    """`n_asks` fans asking for a wheelchair space (every other one without its companion
    seat), every pick of `contested` (which name withheld seats) and `n_best`
    best-available holds, all at once."""
    client = _client(url)
    engine = HoldEngine(client, ttl_seconds=600, max_quantity=8, max_active_per_owner=4,
                        rate_limit_per_minute=0)
    rnd = random.Random(seed)
    block = _block(reserved)
    attempts = [_accessible_attempt(engine, block, f"user:p{proc}-a{i}", i % 2 == 0)
                for i in range(n_asks)]
    attempts += [_pick_attempt(engine, block, f"user:p{proc}-k{i}", picks)
                 for i, picks in enumerate(contested)]
    attempts += [_engine_attempt(engine, block, "reserved", f"user:p{proc}-b{i}", rnd, 0.0)
                 for i in range(n_best)]
    return await _fire(client, attempts, proc, rnd)


# -- the control: read seats, pick in Python, write back; no atomicity -----------------------
async def _naive_hold(client: aredis.Redis, block: keys.BlockKeys, spr: int, qty: int,
                      tag: str) -> tuple:
    raw = await client.get(block.seats)
    chosen = choose_seats(raw.decode(), spr, qty)
    if chosen is None:
        return ("reserved", "refused", qty)
    hold_id = str(uuid.uuid4())
    expires = int(time.time() * 1000) + 600_000
    rec = {"status": "active", "owner": tag, "client": tag, "qty": qty, "price_cents": 0,
           "created_ms": expires - 600_000, "expires_ms": expires, "seats": chosen}
    pipe = client.pipeline(transaction=False)
    for i in chosen:
        pipe.setrange(block.seats, i, "H")
    pipe.hincrby(block.meta, "held", qty)
    pipe.hset(block.records, hold_id, json.dumps(rec))
    pipe.zadd(block.holds, {hold_id: expires})
    await pipe.execute()
    return ("reserved", "held", qty, hold_id, chosen, False)


async def _naive_main(url: str, reserved: tuple[str, str], spr: int, proc: int, n: int,
                      seed: int) -> dict:
    client = _client(url)
    rnd = random.Random(seed)
    block = _block(reserved)
    qtys = [rnd.randint(1, 8) for _ in range(n)]
    await _warm_up(client, min(POOL_SIZE, n))
    started = _start_together()
    results = await asyncio.gather(
        *(_naive_hold(client, block, spr, q, f"user:p{proc}-n{i}") for i, q in enumerate(qtys)),
        return_exceptions=True,
    )
    finished = time.time()
    await client.aclose()
    out = [("error", repr(r)) if isinstance(r, BaseException) else r for r in results]
    return {"proc": proc, "pid": os.getpid(), "started": started, "finished": finished,
            "results": out}


# -- process-pool entry points ----------------------------------------------------------------
_BARRIER: Any = None
_LAST_ARRIVAL: Any = None  # a shared double: when the last process reached the barrier
START_DELAY = 0.2  # seconds after that arrival at which every process fires


def init(barrier: Any, last_arrival: Any) -> None:
    """Pool initializer: the start barrier and arrival time are handed over when the
    process is created."""
    global _BARRIER, _LAST_ARRIVAL
    _BARRIER, _LAST_ARRIVAL = barrier, last_arrival


def _start_together() -> float:
    """Wait for the other processes, then sleep until the instant they all sleep until, and
    return it. The barrier alone is not enough: it wakes its waiters one after another,
    each step a scheduler tick on a busy machine (4-12 ms measured on 2 cores), while a
    batch can take 10 ms, so the first process could finish before the last had started."""
    with _LAST_ARRIVAL.get_lock():
        _LAST_ARRIVAL.value = max(_LAST_ARRIVAL.value, time.time())
    _BARRIER.wait(timeout=60)
    time.sleep(max(0.0, _LAST_ARRIVAL.value + START_DELAY - time.time()))
    return time.time()


def engine_process(*args: Any) -> dict:
    try:
        return asyncio.run(_engine_main(*args))
    except BaseException:
        return {"fatal": traceback.format_exc()}


def picker_process(*args: Any) -> dict:
    try:
        return asyncio.run(_picker_main(*args))
    except BaseException:
        return {"fatal": traceback.format_exc()}


def accessible_process(*args: Any) -> dict:
    try:
        return asyncio.run(_accessible_main(*args))
    except BaseException:
        return {"fatal": traceback.format_exc()}


def naive_process(*args: Any) -> dict:
    try:
        return asyncio.run(_naive_main(*args))
    except BaseException:
        return {"fatal": traceback.format_exc()}


# -- the parent's side --------------------------------------------------------------------
@contextmanager
def race_pool(processes: int) -> Iterator[tuple[ProcessPoolExecutor, Any]]:
    """`processes` spawned processes that start each batch together, and their barrier
    (the parent aborts it when a process does not finish)."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes)
    pool = ProcessPoolExecutor(processes, mp_context=ctx, initializer=init,
                               initargs=(barrier, ctx.Value("d", 0.0)))
    try:
        yield pool, barrier
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def race(workers: tuple[ProcessPoolExecutor, Any], target: Any,
         args: list[tuple[Any, ...]], *, timeout: float = 180) -> list[dict]:
    """Run `target(*args[p])` in each process at once; fail the test if one does not
    finish or fails, or if the processes did not all fire while every other one was."""
    pool, barrier = workers
    futures = [pool.submit(target, *a) for a in args]
    try:
        reports = [f.result(timeout=timeout) for f in futures]
    except (FutureTimeout, BrokenProcessPool) as exc:
        barrier.abort()
        pytest.fail(f"the race processes did not finish: {exc!r}")
    fatal = [r["fatal"] for r in reports if "fatal" in r]
    assert not fatal, fatal[0]
    assert max(r["started"] for r in reports) < min(r["finished"] for r in reports), \
        "the processes did not overlap"
    return reports
