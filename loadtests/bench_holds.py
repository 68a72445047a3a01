"""Benchmark of the hold engine against a real Redis: throughput, latency and script time.

    .venv/bin/python -m loadtests.bench_holds                 # about 1.5 minutes
    .venv/bin/python -m loadtests.bench_holds --seconds 2 --levels 1,64 --json /tmp/b.json

What it measures, all in one run and through one ``redis.asyncio`` client (a
``BlockingConnectionPool``, so 1,024 concurrent tasks wait for a connection instead of
failing):

1. ``HoldEngine.create`` at 1, 64 and 1,024 concurrent asyncio tasks: successful holds a
   second and their p50/p99 latency. Every hold has its own client identity (the per-owner
   limit never refuses), the rate limit is off, and there are always free seats: the
   benchmark loads 30 x 50 blocks as it goes and sends each block at most 90 % of its
   seats. ``create`` is one ``create_hold`` EVALSHA: reclaim, admission (rate limit and
   active-hold cap), best available and the write, in one call on the block's slot.
2. At the same concurrency, through the same client: a no-op ``EVALSHA`` (``return 1``)
   -- the ceiling of this client and server -- and the ratio holds / no-op; and the same
   no-op through the engine's auto-pipeline (the holds' own transport) and that ratio. Also the
   bare ``create_hold`` EVALSHA without the Python wrapper, to show what the wrapper costs.
3. The scripts' own server time: ``CONFIG RESETSTAT``, then only the measured EVALSHAs,
   then ``INFO commandstats`` (``cmdstat_evalsha``). ``create_hold`` on fresh 1,500-seat
   blocks (30 rows x 50): empty, 95 % sold at random (fragmented: most rows have no run of
   adjacent free seats), and 95 % sold front-to-back (what best-available leaves), for
   quantities 2 and 4; the same holds with the seats picked by the fan (the seats best
   available gives there), to compare a pick with a search; on an empty block with the
   rate limit on (the admission's cost); and on an empty block with 8 wheelchair spaces
   withheld (row DD, 4 pairs at each end): a general hold, and holds of 1 and 2 spaces
   with their companion seats (accessible seating's cost).

It FLUSHES the database of ``--redis-url`` (default db 14), before and between phases,
and only that one. A database that holds keys this benchmark did not write is refused
unless ``--force`` is given. ``CONFIG RESETSTAT`` resets the whole server's statistics;
a measurement that sees EVALSHAs other than its own (another client on the same server)
is repeated, left out of the median, and flagged if no repetition was clean; on a shared
server, ``--spawn-redis`` runs part 3 on a private redis-server instead.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import redis
import redis.asyncio as aredis

from amphi import errors, keys
from amphi.accessible import parse_pairs
from amphi.block_spec import BlockSpec
from amphi.geometry import Geometry
from engine import scripts
from engine.best_available import choose_seats
from engine.blocks import load_block
from engine.codecs import block_keys
from engine.hold_types import RECLAIM_LIMIT
from engine.holds import HoldEngine
from engine.transport.connection import async_client, sync_client

DEFAULT_URL = "redis://127.0.0.1:6379/14"
MARKER = "amphi:bench:marker"  # written by this benchmark, so a rerun may flush its db
EVENT_DATE = date(2030, 6, 19)
ROWS, SPR = 30, 50
CAPACITY = ROWS * SPR
PRICE_CENTS = 8_500
FILL_LIMIT = 0.9  # the throughput phases send a block at most this share of its seats
TTL_SECONDS = 600
NOOP_SOURCE = "return 1\n"


# -- machine ----------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(sync: redis.Redis) -> dict[str, Any]:
    server = sync.info("server")
    try:
        import hiredis  # noqa: F401

        parser = "hiredis"
    except ImportError:
        parser = "pure-Python parser"
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "redis_server": f"{server.get('redis_version')} ({server.get('redis_mode')}, "
        f"{server.get('multiplexing_api')})",
        "python": platform.python_version(),
        "redis_py": f"{redis.__version__}, {parser}",
        "os": f"{platform.system()} {platform.release()}",
        "load_avg_start": [round(x, 2) for x in os.getloadavg()],
    }


# -- database hygiene -------------------------------------------------------------------
def flush(sync: redis.Redis) -> None:
    sync.flushdb()
    sync.set(MARKER, "1")


def check_db_is_ours(sync: redis.Redis, url: str, force: bool) -> None:
    size = sync.dbsize()
    if size and not sync.exists(MARKER) and not force:
        sys.exit(
            f"refusing to flush {url}: it holds {size} keys this benchmark did not write. "
            "Pick another database with --redis-url, or pass --force."
        )


@contextmanager
def private_redis(binary: str) -> Iterator[redis.Redis]:
    """A throw-away redis-server on a free local port (no persistence), for measurements
    that must not see other clients' commands. Stopped on exit."""
    path = shutil.which(binary)
    if not path:
        sys.exit(f"--spawn-redis: {binary!r} not found")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [path, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    try:
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"{path} did not answer on port {port}")
        yield client
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)


# -- blocks -----------------------------------------------------------------------------
def block_for(name: str) -> keys.BlockKeys:
    return keys.BlockKeys(EVENT_DATE, name)


def spec_for(block: keys.BlockKeys) -> BlockSpec:
    return BlockSpec(block, "reserved", CAPACITY, ROWS, SPR, PRICE_CENTS, True)


# 8 wheelchair spaces in the back row, 4 pairs at each end, as a platform would have them
PAIRS = parse_pairs("DD1+DD2, DD3+DD4, DD5+DD6, DD7+DD8, DD50+DD49, DD48+DD47, DD46+DD45, "
                    "DD44+DD43", Geometry(ROWS, SPR))


class BlockFeeder:
    """Hands each hold a block with free seats; loads 30 x 50 blocks as they are needed.

    Hold number k goes to block k // per_block, so a block never gets more than
    FILL_LIMIT of its seats and a refusal means an engine problem, not a full block.
    """

    def __init__(self, client: aredis.Redis, prefix: str, qty: int) -> None:
        self.client = client
        self.prefix = prefix
        self.per_block = int(CAPACITY * FILL_LIMIT) // qty
        self.counter = itertools.count()
        self.loaded: dict[int, asyncio.Future[keys.BlockKeys]] = {}

    async def _load(self, index: int) -> keys.BlockKeys:
        block = block_for(f"{self.prefix}-{index:05d}")
        spec = spec_for(block)
        # engine.blocks.load_block is synchronous; this is the same script and arguments.
        reply = await scripts.arun(
            self.client,
            "load_block",
            [block.meta, block.seats],
            [spec.kind, spec.capacity, spec.rows, spec.seats_per_row, spec.price_cents, "1", ""],
        )
        if int(reply[0]) != 1:
            raise RuntimeError(f"load_block {block.tag}: {reply}")
        return block

    async def next_block(self) -> keys.BlockKeys:
        index = next(self.counter) // self.per_block
        fut = self.loaded.get(index)
        if fut is None:
            fut = asyncio.ensure_future(self._load(index))
            self.loaded[index] = fut
        return await fut

    async def preload(self, n: int) -> None:
        for i in range(n):
            if i not in self.loaded:
                self.loaded[i] = asyncio.ensure_future(self._load(i))
        await asyncio.gather(*(self.loaded[i] for i in range(n)))


# -- timed concurrent runs --------------------------------------------------------------
@dataclass
class RunResult:
    name: str
    clients: int
    seconds: float
    ok: int = 0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    refusals: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, round(p / 100 * (len(data) - 1)))]

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "clients": self.clients,
            "seconds": round(self.seconds, 3),
            "ok": self.ok,
            "per_second": round(self.rate, 1),
            "p50_ms": round(self.pct(50), 3),
            "p99_ms": round(self.pct(99), 3),
            "mean_ms": round(statistics.fmean(self.latencies_ms), 3) if self.latencies_ms else None,
            "refusals": self.refusals,
            "errors": self.errors,
        }


async def timed_run(name: str, clients: int, warmup: float, seconds: float, op) -> RunResult:
    """`clients` tasks call `op()` back to back for warmup + seconds; only operations that
    complete inside the measured window count. `op` returns None on success or a refusal
    code; an exception is counted as an error."""
    result = RunResult(name, clients, seconds)
    lat = result.latencies_ms
    loop_start = time.perf_counter()
    measure_start = loop_start + warmup
    deadline = measure_start + seconds
    first_error: list[BaseException] = []

    async def worker() -> None:
        perf = time.perf_counter
        while True:
            t0 = perf()
            if t0 >= deadline:
                return
            try:
                refused = await op()
            except Exception as exc:  # counted and reported
                t1 = perf()
                if measure_start <= t1 <= deadline:
                    key = type(exc).__name__
                    result.errors[key] = result.errors.get(key, 0) + 1
                if not first_error:
                    first_error.append(exc)
                continue
            t1 = perf()
            if measure_start <= t1 <= deadline:
                if refused is None:
                    result.ok += 1
                    lat.append((t1 - t0) * 1000.0)
                else:
                    result.refusals[refused] = result.refusals.get(refused, 0) + 1

    await asyncio.gather(*(worker() for _ in range(clients)))
    if first_error:
        print(f"  ! {name} @ {clients}: first error: {first_error[0]!r}", file=sys.stderr)
    return result


async def throughput(args: argparse.Namespace, sync: redis.Redis) -> list[dict[str, Any]]:
    client = async_client(args.redis_url, max_connections=args.pool_size, timeout=120)
    engine = HoldEngine(
        client,
        ttl_seconds=TTL_SECONDS,
        max_quantity=8,
        max_active_per_owner=4,
        rate_limit_per_minute=0,
    )
    await scripts.aload_all(client)
    noop_sha = await client.script_load(NOOP_SOURCE)
    create = scripts.script("create_hold")
    qty = args.qty
    # create_hold's ARGV after the hold id, as HoldEngine passes them
    bare_argv = [0, "hold", RECLAIM_LIMIT, 4, 0, 0, ""]
    rows: list[dict[str, Any]] = []
    try:
        for level in args.levels:
            row: dict[str, Any] = {"clients": level}

            # 1. engine holds
            flush(sync)
            # open the pool's connections before the clock starts
            await asyncio.gather(*(client.ping() for _ in range(min(level, args.pool_size))))
            feeder = BlockFeeder(client, f"bench-c{level}", qty)
            await feeder.preload(2)
            serial = itertools.count()

            async def hold_op(feeder=feeder, serial=serial, level=level) -> str | None:
                block = await feeder.next_block()
                n = next(serial)
                try:
                    await engine.create(block, qty, owner="", client=f"bench:{level}:{n}")
                except errors.DomainError as exc:
                    return exc.code
                return None

            res = await timed_run("holds", level, args.warmup, args.seconds, hold_op)
            row["holds"] = res.summary()
            held_blocks = len(feeder.loaded)

            # 2. the ceiling: a no-op EVALSHA through the same client, same concurrency
            async def noop_op() -> str | None:
                await client.evalsha(noop_sha, 0)
                return None

            res = await timed_run("noop", level, args.warmup, args.seconds, noop_op)
            row["noop"] = res.summary()

            # 2b. the same no-op through the engine's auto-pipeline, the holds' transport
            async def noop_ap_op() -> str | None:
                await engine.pipeline.evalsha(noop_sha, 0)  # type: ignore[union-attr]
                return None

            res = await timed_run("noop-ap", level, args.warmup, args.seconds, noop_ap_op)
            row["noop_autopipelined"] = res.summary()

            # 3. bare create_hold: one EVALSHA per hold, no admission, no hold-id pointer
            if not args.skip_bare:
                flush(sync)
                feeder2 = BlockFeeder(client, f"bare-c{level}", qty)
                await feeder2.preload(2)

                async def bare_op(feeder=feeder2) -> str | None:
                    block = await feeder.next_block()
                    keys_ = block_keys(block)
                    reply = await client.evalsha(
                        create.sha, len(keys_), *keys_, str(uuid.uuid4()), qty,
                        TTL_SECONDS * 1000, "", f"bare:{uuid.uuid4().hex}", *bare_argv
                    )
                    if int(reply[0]) == 0:
                        r = reply[1]
                        return r.decode() if isinstance(r, bytes) else str(r)
                    return None

                res = await timed_run("bare", level, args.warmup, args.seconds, bare_op)
                row["bare_create_hold"] = res.summary()

            for ceiling, key in (("noop", "ratio_holds_to_noop"),
                                 ("noop_autopipelined", "ratio_holds_to_noop_ap")):
                per_second = row[ceiling]["per_second"]
                row[key] = row["holds"]["per_second"] / per_second if per_second else None
            row["blocks_used"] = held_blocks
            rows.append(row)
            h, n = row["holds"], row["noop"]
            print(
                f"  {level:>5} clients: holds {h['per_second']:>9.0f}/s "
                f"(p50 {h['p50_ms']:.2f} ms, p99 {h['p99_ms']:.2f} ms)  "
                f"no-op {n['per_second']:>9.0f}/s  ratio {row['ratio_holds_to_noop']:.2f}"
                f"  auto-pipelined no-op {row['noop_autopipelined']['per_second']:>9.0f}/s"
                f"  ratio {row['ratio_holds_to_noop_ap']:.2f}"
                + (
                    f"  bare {row['bare_create_hold']['per_second']:.0f}/s"
                    if "bare_create_hold" in row
                    else ""
                )
                + (f"  refusals {h['refusals']}" if h["refusals"] else "")
                + (f"  errors {h['errors']}" if h["errors"] else ""),
                file=sys.stderr,
            )
    finally:
        await client.aclose()  # and its connections
    return rows


# -- script server time -----------------------------------------------------------------
def seat_pattern(state: str, rng: random.Random) -> list[int]:
    """Sold seat indices of a block in `state`."""
    if state == "empty":
        return []
    n_sold = round(CAPACITY * 0.95)
    if state == "random95":
        return sorted(rng.sample(range(CAPACITY), n_sold))
    if state == "front95":  # best-available fills from the front: the back rows stay free
        return list(range(n_sold))
    raise ValueError(state)


STATES = {
    "empty": "empty",
    "random95": "95 % sold, random (fragmented)",
    "front95": "95 % sold, front to back",
}


def evalsha_stats(sync: redis.Redis) -> tuple[int, float]:
    stats = sync.info("commandstats").get("cmdstat_evalsha")
    if not stats:
        return 0, 0.0
    return int(stats["calls"]), float(stats["usec"])


def measure_server_time(
    sync: redis.Redis, build, n: int, reps: int, ok: str, attempts: int = 3
) -> dict[str, Any]:
    """`build()` prepares fresh data and returns a list of (sha, keys, args); only those
    EVALSHAs run between CONFIG RESETSTAT and INFO commandstats. Repeated `reps` times;
    a repetition that sees EVALSHAs other than its own is retried up to `attempts` times."""
    runs: list[tuple[float, bool]] = []  # (usec per call, clean)
    outcomes: dict[str, int] = {}
    for _ in range(reps):
        for attempt in range(attempts):
            calls_spec = build()
            pipe = sync.pipeline(transaction=False)
            for sha, ks, av in calls_spec:
                pipe.evalsha(sha, len(ks), *ks, *av)
            sync.config_resetstat()
            replies = pipe.execute()
            calls, usec = evalsha_stats(sync)
            if calls == n or attempt == attempts - 1:
                break
        runs.append((usec / calls if calls else float("nan"), calls == n))
        for reply in replies:
            key = outcome(reply, ok)
            outcomes[key] = outcomes.get(key, 0) + 1
    clean = [v for v, ok_run in runs if ok_run]
    used = clean or [v for v, _ in runs]
    return {
        "usec_per_call": statistics.median(used),
        "usec_per_call_min": min(used),
        "usec_per_call_all": [round(v, 2) for v, _ in runs],
        "clean_runs": len(clean),
        "calls": n,
        "reps": reps,
        "outcomes": outcomes,
        "contaminated": not clean,
    }


def outcome(reply: Any, ok: str) -> str:
    if not isinstance(reply, list):  # the no-op script
        return ok
    code = int(reply[0])
    if code:
        return {1: ok, 2: "replay"}.get(code, str(code))
    r = reply[1]
    return r.decode() if isinstance(r, bytes) else str(r)


def script_times(args: argparse.Namespace, sync: redis.Redis) -> list[dict[str, Any]]:
    n = args.script_calls
    scripts.load_all(sync)
    create = scripts.script("create_hold")
    noop_sha = sync.script_load(NOOP_SOURCE)
    out: list[dict[str, Any]] = []

    def report(row: dict[str, Any]) -> None:
        out.append(row)
        flag = "  CONTAMINATED" if row["contaminated"] else ""
        if not row["contaminated"] and row["clean_runs"] < row["reps"]:
            flag = f"  ({row['reps'] - row['clean_runs']} contaminated run(s) left out)"
        print(
            f"  {row['script']:<12} {row['state']:<32} qty {row['qty']!s:>2}: "
            f"{row['usec_per_call']:7.1f} us/call (runs {row['usec_per_call_all']})  "
            f"{row['outcomes']}{flag}",
            file=sys.stderr,
        )

    # baseline: the no-op script
    row = measure_server_time(
        sync, lambda: [(noop_sha, [], [])] * n, n, args.script_reps, "returned 1"
    )
    report({"script": "no-op", "state": "-", "qty": "-", **row})

    # the floor of create_hold on this server: a script that only returns, called with
    # create_hold's 5 keys and 12 arguments (passing them in costs time of its own)
    floor_block = block_for("st-floor")
    floor = [(noop_sha, block_keys(floor_block),
              [str(uuid.uuid4()), 2, TTL_SECONDS * 1000, "", "st", 0, "hold", RECLAIM_LIMIT,
               4, 0, 0, ""])] * n
    row = measure_server_time(sync, lambda: floor, n, args.script_reps, "returned 1")
    report({"script": "no-op", "state": "with create_hold's 5 keys, 12 args", "qty": "-",
            **row})

    for state in ("empty", "random95", "front95"):
        for qty in (2, 4):

            def build(state=state, qty=qty) -> list[tuple[str, list[str], list[Any]]]:
                flush(sync)
                rng = random.Random(f"{args.seed}:{state}")  # same pattern in every block
                sold = seat_pattern(state, rng)
                specs = []
                for i in range(n):
                    block = block_for(f"st-{state}-q{qty}-{i:05d}")
                    load_block(sync, spec_for(block), sold)
                    argv = [str(uuid.uuid4()), qty, TTL_SECONDS * 1000, "", f"st:{i}", 0]
                    argv += ["hold", RECLAIM_LIMIT, 4, 0, 0, ""]
                    specs.append((create.sha, block_keys(block), argv))
                return specs

            row = measure_server_time(sync, build, n, args.script_reps, "held")
            report({"script": "create_hold", "state": STATES[state], "qty": qty, **row})

    # The same holds picked: the seats best available gives in each state, named by the fan
    # (ARGV[13]), so that a pick and a search are compared on the same seats.
    for state in ("empty", "random95", "front95"):
        for qty in (2, 4):

            def build_pick(state=state, qty=qty) -> list[tuple[str, list[str], list[Any]]]:
                flush(sync)
                rng = random.Random(f"{args.seed}:{state}")
                sold = seat_pattern(state, rng)
                taken = set(sold)
                seats = "".join("S" if i in taken else "0" for i in range(CAPACITY))
                picked = choose_seats(seats, SPR, qty, allow_split=True)
                assert picked is not None, f"no {qty} seats in {state}"
                specs = []
                for i in range(n):
                    block = block_for(f"st-pick-{state}-q{qty}-{i:05d}")
                    load_block(sync, spec_for(block), sold)
                    argv = [str(uuid.uuid4()), qty, TTL_SECONDS * 1000, "", f"st:{i}", 0]
                    argv += ["hold", RECLAIM_LIMIT, 4, 0, 0, "", ",".join(map(str, picked))]
                    specs.append((create.sha, block_keys(block), argv))
                return specs

            row = measure_server_time(sync, build_pick, n, args.script_reps, "held")
            report({"script": "create_hold", "state": f"{STATES[state]}, seats picked",
                    "qty": qty, **row})

    def build_limited() -> list[tuple[str, list[str], list[Any]]]:
        flush(sync)
        specs = []
        for i in range(n):
            block = block_for(f"st-rate-{i:05d}")
            load_block(sync, spec_for(block), [])
            argv = [str(uuid.uuid4()), 2, TTL_SECONDS * 1000, "", f"st:{i}", 0]
            argv += ["hold", RECLAIM_LIMIT, 4, 30, 0, ""]
            specs.append((create.sha, block_keys(block), argv))
        return specs

    row = measure_server_time(sync, build_limited, n, args.script_reps, "held")
    report({"script": "create_hold", "state": "empty, rate limit 30/min on", "qty": 2, **row})

    # Accessible seating: its spaces withheld in the block, a general hold beside them and
    # holds that ask for them (ARGV[14..15]).
    for spaces in (0, 1, 2):

        def build_access(spaces=spaces) -> list[tuple[str, list[str], list[Any]]]:
            flush(sync)
            specs = []
            for i in range(n):
                block = block_for(f"st-acc{spaces}-{i:05d}")
                load_block(sync, dataclasses.replace(spec_for(block), accessible=PAIRS), [])
                qty = 2 * spaces or 2
                argv = [str(uuid.uuid4()), qty, TTL_SECONDS * 1000, "", f"st:{i}", 0]
                argv += ["hold", RECLAIM_LIMIT, 4, 0, 0, "", ""]
                argv += [spaces, 1] if spaces else []
                specs.append((create.sha, block_keys(block), argv))
            return specs

        row = measure_server_time(sync, build_access, n, args.script_reps, "held")
        what = (f"8 wheelchair spaces withheld, {spaces} asked for" if spaces
                else "8 wheelchair spaces withheld, a general hold")
        report({"script": "create_hold", "state": what, "qty": 2 * spaces or 2, **row})
    flush(sync)
    return out


# -- output -----------------------------------------------------------------------------
def fmt_rate(v: float) -> str:
    return f"{v:,.0f}"


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    cfg = result["config"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores; Redis {m['redis_server']}; "
        f"Python {m['python']}, redis-py {m['redis_py']}; {m['os']}. Load average "
        f"(1/5/15 min) at start {'/'.join(map(str, m['load_avg_start']))}, at end "
        f"{'/'.join(map(str, m.get('load_avg_end', [])))} (the benchmark itself adds "
        "about 2).",
        "",
    ]
    if result.get("throughput"):
        bare = any("bare_create_hold" in r for r in result["throughput"])
        lines += [
            f"Throughput: one redis.asyncio client, BlockingConnectionPool of "
            f"{cfg['pool_size']}, {cfg['seconds']:g} s per run after {cfg['warmup']:g} s "
            f"warm-up, quantity {cfg['qty']}, successful holds only. `HoldEngine.create` "
            "is one create_hold EVALSHA (admission included).",
            "",
            "| concurrent clients | holds/s | hold p50 ms | hold p99 ms "
            "| no-op EVALSHA/s | no-op p50 ms | no-op p99 ms | holds / no-op "
            "| auto-pipelined no-op/s | holds / that "
            + ("| bare create_hold/s |" if bare else "|"),
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if bare else ""),
        ]
        for r in result["throughput"]:
            h, n = r["holds"], r["noop"]
            cells = [
                f"{r['clients']:,}",
                fmt_rate(h["per_second"]),
                f"{h['p50_ms']:.2f}",
                f"{h['p99_ms']:.2f}",
                fmt_rate(n["per_second"]),
                f"{n['p50_ms']:.2f}",
                f"{n['p99_ms']:.2f}",
                f"{r['ratio_holds_to_noop']:.2f}",
                fmt_rate(r["noop_autopipelined"]["per_second"]),
                f"{r['ratio_holds_to_noop_ap']:.2f}",
            ]
            if bare:
                cells.append(
                    fmt_rate(r["bare_create_hold"]["per_second"])
                    if "bare_create_hold" in r
                    else "-"
                )
            lines.append("| " + " | ".join(cells) + " |")
        notes = []
        for r in result["throughput"]:
            for kind in ("holds", "noop", "noop_autopipelined", "bare_create_hold"):
                s = r.get(kind)
                if s and (s["refusals"] or s["errors"]):
                    notes.append(
                        f"{kind} @ {r['clients']}: refusals {s['refusals']}, errors {s['errors']}"
                    )
        if notes:
            lines += ["", "Not counted: " + "; ".join(notes) + "."]
        lines.append("")
    if result.get("script_time"):
        lines += [
            f"Script server time on {result['script_server']} (`INFO commandstats` "
            f"cmdstat_evalsha after CONFIG RESETSTAT, {cfg['script_calls']} calls, only "
            "the measured EVALSHAs in "
            f"between; median of {cfg['script_reps']} runs; every create_hold on a fresh "
            f"{ROWS} x {SPR} block in that state; target < 50 µs):",
            "",
            "| script | block / request | qty | µs per call (median) | min | outcome |",
            "|---|---|---:|---:|---:|---|",
        ]
        for r in result["script_time"]:
            outcome = ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items()))
            if r["contaminated"]:
                outcome += " (CONTAMINATED: other EVALSHAs ran on the server meanwhile)"
            lines.append(
                f"| {r['script']} | {r['state']} | {r['qty']} | "
                f"{r['usec_per_call']:.1f} | {r['usec_per_call_min']:.1f} | "
                f"{outcome} |"
            )
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m loadtests.bench_holds",
        description="Benchmark the hold engine: holds/s and latency vs a no-op EVALSHA, "
        "and the Lua scripts' server time. FLUSHES the database of --redis-url.",
    )
    p.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", DEFAULT_URL),
        help=f"Redis to use; its database is flushed (default {DEFAULT_URL}, or $BENCH_REDIS_URL)",
    )
    p.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per run")
    p.add_argument(
        "--levels",
        default="1,64,1024",
        help="comma-separated concurrency levels (default 1,64,1024)",
    )
    p.add_argument("--qty", type=int, default=2, help="seats per hold in the throughput runs")
    p.add_argument(
        "--pool-size",
        type=int,
        default=256,
        help="connections in the BlockingConnectionPool (default 256)",
    )
    p.add_argument(
        "--script-calls",
        type=int,
        default=500,
        help="EVALSHAs per script-time measurement (default 500)",
    )
    p.add_argument(
        "--script-reps",
        type=int,
        default=3,
        help="repetitions of each script-time measurement; the median is reported (default 3)",
    )
    p.add_argument("--seed", default="amphi", help="seed of the random seat patterns")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--skip-script-time", action="store_true")
    p.add_argument(
        "--skip-bare", action="store_true", help="leave out the bare create_hold EVALSHA runs"
    )
    p.add_argument(
        "--spawn-redis",
        nargs="?",
        const="redis-server",
        metavar="BINARY",
        help="measure the script server time on a private redis-server started for the "
        "purpose (default binary: redis-server), so other clients' EVALSHAs on a shared "
        "server cannot mix in",
    )
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument(
        "--force",
        action="store_true",
        help="flush the database even if it holds keys this benchmark did not write",
    )
    args = p.parse_args(argv)
    args.levels = [int(x) for x in args.levels.split(",") if x.strip()]
    if not 1 <= args.qty <= 8:
        p.error("--qty must be 1..8")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sync = sync_client(args.redis_url)
    sync.ping()
    check_db_is_ours(sync, args.redis_url, args.force)
    flush(sync)
    result: dict[str, Any] = {
        "machine": machine_info(sync),
        "config": {k: v for k, v in vars(args).items() if k != "json"},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    t0 = time.perf_counter()
    if not args.skip_throughput:
        print("throughput:", file=sys.stderr)
        result["throughput"] = asyncio.run(throughput(args, sync))
    if not args.skip_script_time:
        print("script server time:", file=sys.stderr)
        if args.spawn_redis:
            with private_redis(args.spawn_redis) as private:
                version = private.info("server").get("redis_version")
                result["script_server"] = f"a private {args.spawn_redis} {version}"
                flush(private)
                result["script_time"] = script_times(args, private)
        else:
            result["script_server"] = "the --redis-url server"
            result["script_time"] = script_times(args, sync)
    flush(sync)
    result["elapsed_s"] = round(time.perf_counter() - t0, 1)
    result["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(markdown(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
