"""Benchmark of the waiting room: a crowd joins before the on-sale, everybody polls, then the
admitted fans hold and buy through the normal path.

    .venv/bin/python -m loadtests.bench_queue          # about 2 minutes
    .venv/bin/python -m loadtests.bench_queue --fans 60000 --join-seconds 10

Black-box, on this machine, as loadtests/bench_http.py runs its servers: a private
redis-server, the database ``amphi_bench_queue`` (``amphi migrate``, ``amphi setup-venue``),
``amphi serve --workers 2`` and, served the same way, the no-op ceiling of
``loadtests/ceiling_app.py``; wrk (one thread per core, ``--connections``) makes the load.

1. ``amphi queue open`` with the on-sale start ``--join-seconds`` + 5 s ahead, at ``--rate``.
2. **Joins**: wrk posts ``/api/queue/join/`` for ``--join-seconds``, every request a new
   guest (its own X-Forwarded-For address), and keeps every queue ticket: the pre-queue.
3. The on-sale starts. **First polls**: every fan polls once (their drawn position, in a new
   ticket: one Redis call each; loadtests/wrk/first_poll.lua). **Polls**: wrk gets
   ``/api/queue/status/`` with random fans' new tickets for ``--poll-seconds`` (no Redis
   call), then the no-op ceiling the same way. A fan polling every 5 s is a fifth of a
   request a second: the crowd's offered load is fans / 5.
4. **Buying**: the operator raises the rate live (``amphi queue open --rate``), and
   ``--buyers`` fans picked at random from the crowd poll until admitted, hold 2 seats with
   their admission token, check out and pay (demo confirm); ``amphi reconcile`` must find
   no drift.

Prints and writes (``--json``, ``--plot``) joins/s and polls/s with p50/p99, their ratio to
the no-op ceiling, statuses, the room's counts and the buyers' outcome, and checks the
targets: joins >= 5,000/s, polls >= 15,000/s, p99 < 100 ms, no status but 200 (and 429).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import redis

from loadtests.bench_http import (
    BASE,
    _stop,
    amphi,
    children_cpu,
    free_port,
    machine,
    process,
    run_wrk,
    server_env,
    session_cpu,
    wait_for_redis,
    wait_http,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DAY = "2027-06-19"
TARGET_JOINS = 5_000
TARGET_POLLS = 15_000
TARGET_P99_MS = 100.0


def ticket_identity(ticket: str) -> str:
    """The identity a queue ticket carries (its last field; read without the key)."""
    payload = ticket.split(".")[0]
    fields = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    return fields.split("|", 4)[4]


async def buy(api: httpx.AsyncClient, ticket: str, section_id: str) -> str:
    """One fan from the crowd: poll until admitted, hold with the admission token (as the
    guest whose address is in the ticket), check out, pay. Returns the outcome."""
    address = ticket_identity(ticket).removeprefix("guest:")
    fan = {"X-Forwarded-For": address}
    for _ in range(300):
        status = (await api.get("/api/queue/status/", params={"queue_ticket": ticket})).json()
        if status["data"]["state"] == "admitted":
            break
        await asyncio.sleep(0.5)
    else:
        return "never admitted"
    token = status["data"]["admission_token"]
    hold = await api.post(f"{BASE}/holds/create/", headers={**fan, "X-Admission-Token": token},
                          json={"section_id": section_id, "event_date": DAY, "quantity": 2})
    if hold.status_code != 201:
        return f"hold {hold.status_code} {hold.json()['error']['code']}"
    order = await api.post("/api/payments/amphitheater/checkout/", headers=fan, json={
        "hold_id": hold.json()["data"]["hold_id"],
        "billing_details": {"email": f"{address}@example.com", "firstName": "Fan",
                            "lastName": "Crowd"}})
    if order.status_code != 200:
        return f"checkout {order.status_code}"
    paid = await api.post("/api/payments/amphitheater/confirm/", headers=fan,
                          json={"order_id": order.json()["data"]["order_id"]})
    return "bought" if paid.status_code == 200 else f"confirm {paid.status_code}"


async def buyers(api_url: str, tickets: list[str], sections: list[str]) -> dict[str, int]:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as api:
        outcomes = await asyncio.gather(*(buy(api, t, random.choice(sections))
                                          for t in tickets))
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def room_counts(port: int) -> dict[str, int]:
    raw = redis.Redis(port=port).hgetall(f"amphi:{{room:{DAY}}}:counters")
    return {k.decode(): int(v) for k, v in raw.items()}


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    redis_port = free_port()
    env = {**server_env(redis_port, args.database_url), "LOG_LEVEL": "WARNING"}
    redis_cmd = ["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no",
                 "--dir", str(work)]
    api_port, ceiling_port = free_port(), free_port()
    serve = [sys.executable, "-m", "runtime.cli", "serve", "--workers", str(args.workers)]
    api, ceiling = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{ceiling_port}"
    result: dict[str, Any] = {}
    with process(redis_cmd, env=env, log=work / "redis.log") as redis_child:
        wait_for_redis(redis_port)
        amphi(env, "migrate")
        amphi(env, "setup-venue", "--event-dates", DAY)
        with (process([*serve, "--port", str(api_port)], env=env, log=work / "api.log") as a,
              process([*serve, "--port", str(ceiling_port), "--app",
                       "loadtests.ceiling_app:create_app"], env=env,
                      log=work / "ceiling.log") as c):
            wait_http(f"{api}/healthz", a)
            wait_http(f"{ceiling}/noop", c)
            start = datetime.now(UTC) + timedelta(seconds=args.join_seconds + 5)
            amphi(env, "queue", "open", "--event-date", DAY, "--on-sale-at", start.isoformat(),
                  "--rate", str(args.rate))
            wrk = {"connections": args.connections, "threads": args.threads, "timeout": 2}

            def measured(name: str, server: int, url: str, script: str, script_args: list[str],
                         seconds: float) -> dict[str, Any]:
                """wrk's result, with the CPU per request (µs) of the server, Redis, wrk."""
                sessions = {"server": server, "redis": redis_child.pid}
                before = {k: session_cpu(v) for k, v in sessions.items()} | {
                    "wrk": children_cpu()}
                r = run_wrk(url, script, script_args, seconds=seconds, **wrk)
                after = {k: session_cpu(v) for k, v in sessions.items()} | {
                    "wrk": children_cpu()}
                r["cpu_us"] = {k: round((after[k] - before[k]) / r["requests"] * 1e6, 1)
                               for k in after}
                result[name] = r
                return r

            prefix = work / "tickets"
            measured("join", a.pid, f"{api}/api/queue/join/", "join.lua", [DAY, str(prefix)],
                     args.join_seconds)
            tickets = [line for f in sorted(work.glob("tickets-*.txt"))
                       for line in f.read_text().split()]
            Path(str(prefix) + ".txt").write_text("\n".join(tickets) + "\n")
            result["fans"] = len(set(tickets))
            print(f"joins: {_line(result['join'])}; {result['fans']} fans in the pre-queue",
                  flush=True)

            while datetime.now(UTC) < start + timedelta(seconds=0.5):
                time.sleep(0.1)
            first = work / "positioned"
            # wrk waits out its duration even once its threads have stopped: the rate is the
            # connections over the mean latency (Little's law) instead
            first_poll = measured("first_poll", a.pid, api, "first_poll.lua",
                                  [str(prefix) + ".txt", str(args.threads), str(first)],
                                  max(5, len(tickets) // 2000))
            first_poll["rps"] = round(args.connections / (first_poll["mean_ms"] / 1000), 1)
            print(f"first polls: {_line(result['first_poll'])}", flush=True)
            paths = work / "polls.txt"
            paths.write_text("".join(f"/api/queue/status/?queue_ticket={t}\n"
                                     for f in sorted(work.glob("positioned-*.txt"))
                                     for t in f.read_text().split()))
            measured("poll", a.pid, api, "get.lua", [str(paths)], args.poll_seconds)
            print(f"polls: {_line(result['poll'])}", flush=True)
            measured("noop", c.pid, f"{ceiling}/noop", "get.lua", [], args.poll_seconds)
            print(f"no-op ceiling: {_line(result['noop'])}", flush=True)

            amphi(env, "queue", "open", "--event-date", DAY, "--rate", str(args.buy_rate))
            venue = httpx.get(f"{api}{BASE}/venues/").json()["data"][0]
            sections = [s["id"] for s in httpx.get(
                f"{api}{BASE}/venues/{venue['id']}/sections/",
                params={"event_date": DAY}).json()["data"]]
            started = time.monotonic()
            result["buyers"] = asyncio.run(buyers(api, random.sample(tickets, args.buyers),
                                                  sections))
            result["buy_seconds"] = round(time.monotonic() - started, 1)
            print(f"buyers: {result['buyers']} in {result['buy_seconds']} s", flush=True)
            result["room"] = room_counts(redis_port)
            rec = subprocess.run([sys.executable, "-m", "runtime.cli", "reconcile"], env=env,
                                 cwd=ROOT, capture_output=True, text=True, check=False)
            result["reconcile"] = rec.stdout.strip().splitlines()[-1]
            result["reconcile_clean"] = rec.returncode == 0
    return result


def _line(r: dict[str, Any]) -> str:
    return (f"{r['rps']:,.0f}/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
            f"statuses {r['statuses']}, socket errors {r['socket_errors'] or 'none'}, "
            f"CPU µs a request {r.get('cpu_us')}")


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    join, poll = result["join"], result["poll"]

    def only_ok(r: dict[str, Any]) -> bool:
        return set(r["statuses"]) <= {200, 429} and not r["socket_errors"]

    return [
        {"target": f"joins >= {TARGET_JOINS:,}/s", "value": join["rps"],
         "met": join["rps"] >= TARGET_JOINS},
        {"target": f"polls >= {TARGET_POLLS:,}/s", "value": poll["rps"],
         "met": poll["rps"] >= TARGET_POLLS},
        {"target": f"join and poll p99 < {TARGET_P99_MS:g} ms",
         "value": max(join["p99_ms"], poll["p99_ms"]),
         "met": max(join["p99_ms"], poll["p99_ms"]) < TARGET_P99_MS},
        {"target": "no error but 429", "value": f"{join['statuses']} {poll['statuses']}",
         "met": only_ok(join) and only_ok(poll)},
        {"target": "every buyer bought, reconcile clean",
         "value": f"{result['buyers']}; {result['reconcile']}",
         "met": set(result["buyers"]) == {"bought"} and result["reconcile_clean"]},
    ]


def plot(result: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["join", "first_poll", "poll", "noop"]
    labels = ["joins", "first polls", "polls", "no-op ceiling"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.bar(labels, [result[n]["rps"] for n in names], color=["C0", "C2", "C1", "C7"])
    left.axhline(TARGET_JOINS, color="C0", linestyle=":", label="join target")
    left.axhline(TARGET_POLLS, color="C1", linestyle=":", label="poll target")
    left.set_ylabel("requests / s")
    left.legend()
    right.bar(labels, [result[n]["p99_ms"] for n in names], color=["C0", "C2", "C1", "C7"])
    right.axhline(TARGET_P99_MS, color="k", linestyle=":", label="p99 target")
    right.set_ylabel("p99 ms")
    right.legend()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--join-seconds", type=int, default=10)
    p.add_argument("--poll-seconds", type=int, default=15)
    p.add_argument("--connections", type=int, default=100)
    p.add_argument("--threads", type=int, default=1,
                   help="wrk threads (one: on 2 cores, a second took CPU from the servers)")
    p.add_argument("--workers", type=int, default=2, help="API processes")
    p.add_argument("--rate", type=int, default=600, help="admissions a minute at the start")
    p.add_argument("--buy-rate", type=int, default=600_000,
                   help="the rate the operator sets for the buying phase")
    p.add_argument("--buyers", type=int, default=200)
    p.add_argument("--database-url",
                   default="postgresql+psycopg://postgres@127.0.0.1:5432/amphi_bench_queue")
    p.add_argument("--json", type=Path, default=HERE / "results" / "queue.json")
    p.add_argument("--plot", type=Path, default=HERE / "results" / "queue.png")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _stop)
    args = parse_args(argv)
    info = machine()
    print(f"{info['nproc']} x {info['cpu']}, load {info['loadavg_at_start'][0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="amphi-bench-queue-") as tmp:
        result = run(args, Path(tmp))
    checks = targets(result)
    for c in checks:
        print(f"{'MET ' if c['met'] else 'NOT '} {c['target']}: {c['value']}")
    info["finished_utc"] = datetime.now(UTC).isoformat(timespec="seconds")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": info, "settings": {
        k: str(v) for k, v in vars(args).items()}, "result": result, "targets": checks},
        indent=1) + "\n")
    plot(result, args.plot, f"amphi waiting room, {info['nproc']} x {info['cpu']}, "
                            f"{info['started_utc']}")
    print(f"wrote {args.json} and {args.plot}")
    return 0 if all(c["met"] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
