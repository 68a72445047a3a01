"""HTTP benchmark of the hold endpoint and the sections endpoint against their ceilings.

    .venv/bin/python -m loadtests.bench_http            # about 11 minutes
    .venv/bin/python -m loadtests.bench_http --seconds 3 --repeat 1 --connections 100

Everything runs on this machine, with wrk as the load generator (``apt-get install wrk``):

* a private ``redis-server`` on a free port (no persistence) and its own PostgreSQL
  database (``amphi_bench``), set up with ``amphi migrate`` and ``amphi setup-venue`` for
  ``--days`` show days, so it never touches a running service or the tests;
* for 1 and 2 API processes, ``amphi serve --workers N`` and, served the same way
  (``amphi serve --app``: uvicorn, uvloop with batched accepts, httptools, a socket per
  process), the ceilings of ``loadtests/ceiling_app.py``: a no-op endpoint, one trivial
  EVALSHA on the same Redis (the targets' ceiling) and, for reference, the same EVALSHA
  through the API's auto-pipeline (``evalsha-ap``);
* at 100 and 1,000 connections: the ceilings, ``POST .../holds/create/`` (every request
  with a random fan's own JWT, its own Idempotency-Key, 2 seats in a random block; the
  Redis blocks are reloaded before each measurement so successful holds dominate: each
  block stays well below full), and ``GET .../venues/{id}/sections/?event_date=`` (random
  date, served from the per-process cache). Access logs stay on (JSON, to a file).

wrk runs one thread (``--threads``) with its 2 s timeout. The benchmark prints each result
with its ratio to the ceilings, writes ``--json`` and a plot of throughput and p99 against
connections (``--plot``, needs the ``bench`` extra), and checks the targets: holds >= 80 %
of the EVALSHA ceiling at 100 connections with p99 under 50 ms; at 1,000 connections only
409/429 besides success, no socket errors or timeouts, and at least 70 % of the
100-connection throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import redis

from api.auth import mint_token

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WRK_DIR = HERE / "wrk"
BASE = "/api/tickets/amphitheater"
ENDPOINTS = ("noop", "evalsha", "evalsha-ap", "hold", "hold-jwt", "sections")
CEILINGS = ("noop", "evalsha", "evalsha-ap")
FIRST_DAY = date(2027, 6, 1)
TARGET_RATIO_100 = 0.8
TARGET_P99_MS = 50.0
TARGET_KEEP_1000 = 0.7


# -- machine and processes ----------------------------------------------------------------
def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text()
                  .splitlines() if line.startswith("MemTotal"))
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "wrk": (wrk.stdout or wrk.stderr).split("Copyright")[0].strip(),
        "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "loadavg_at_start": os.getloadavg(),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def process(cmd: list[str], *, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """A child in its own session (so that its workers go with it), stopped on exit."""
    with log.open("ab") as out:
        child = subprocess.Popen(cmd, env=env, stdout=out, stderr=out, cwd=ROOT,
                                 start_new_session=True)
    try:
        yield child
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()


def wait_http(url: str, child: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"{child.args} exited with {child.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())["data"]


def amphi(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "-m", "runtime.cli", *args],
                   env={**env, "LOG_LEVEL": "WARNING"}, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)


def session_cpu(session: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of a session: a
    server started in its own session (`process`), with all its workers."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[3]) == session:  # after the command: state ppid pgrp session ...
            ticks += int(fields[11]) + int(fields[12])  # utime stime
    return ticks / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """CPU seconds of this process's finished children (wrk, once it has exited)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- wrk ------------------------------------------------------------------------------------
def run_wrk(url: str, script: str, script_args: list[str], *, connections: int,
            threads: int, seconds: float, timeout: int = 2) -> dict[str, Any]:
    cmd = ["wrk", "-t", str(min(threads, connections)), "-c", str(connections),
           "-d", f"{max(1, round(seconds))}s", "--timeout", f"{timeout}s",
           "-s", str(WRK_DIR / script), url, "--", *script_args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    raw = json.loads(line.removeprefix("RESULT "))
    seconds_run = raw["duration_us"] / 1e6
    statuses = {int(k): v for k, v in raw["statuses"].items()}
    ok = sum(v for k, v in statuses.items() if 200 <= k < 400)
    socket_errors = {k: v for k, v in raw["errors"].items() if k != "status" and v}
    return {
        "requests": raw["requests"],
        "seconds": round(seconds_run, 2),
        "rps": round(raw["requests"] / seconds_run, 1),
        "ok": ok,
        "ok_rps": round(ok / seconds_run, 1),
        "ok_share": round(ok / raw["requests"], 4) if raw["requests"] else 0.0,
        "statuses": statuses,
        "socket_errors": socket_errors,
        "p50_ms": round(raw["latency_us"]["p50"] / 1000, 2),
        "p90_ms": round(raw["latency_us"]["p90"] / 1000, 2),
        "p99_ms": round(raw["latency_us"]["p99"] / 1000, 2),
        "max_ms": round(raw["latency_us"]["max"] / 1000, 2),
        "mean_ms": round(raw["latency_us"]["mean"] / 1000, 3),
    }


def server_env(redis_port: int, database_url: str) -> dict[str, str]:
    """The environment of the servers under test: a private Redis (the hold engine on db
    0, RQ on db 1), their own database, a fresh JWT secret, JSON logs."""
    return {
        **os.environ,
        "APP_ENV": "development",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "RQ_REDIS_URL": f"redis://127.0.0.1:{redis_port}/1",
        "DATABASE_URL": database_url,
        "JWT_SECRET": secrets.token_urlsafe(32),
        "HOLD_TTL_SECONDS": "600",
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
    }


def wait_for_redis(port: int) -> None:
    """Until the private redis-server on `port` answers (10 s at most)."""
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            return
        except redis.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError("the private redis-server did not start")


# -- the benchmark --------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.redis_port = free_port()
        self.days = [(FIRST_DAY + timedelta(days=i)).isoformat() for i in range(args.days)]
        self.env = server_env(self.redis_port, args.database_url)
        for name in ("HOLD_RATE_LIMIT_PER_MINUTE", "HOLD_MAX_ACTIVE_PER_OWNER",
                     "SECTIONS_CACHE_SECONDS", "REDIS_MAX_CONNECTIONS"):
            self.env.pop(name, None)  # production defaults, whatever the caller's shell says
        self.results: list[dict[str, Any]] = []

    def reload_blocks(self) -> None:
        """Every block fresh (empty) in Redis, so that holds succeed for the whole run."""
        redis.Redis(port=self.redis_port).flushdb()
        amphi(self.env, "setup-venue", "--event-dates", *self.days)

    def files(self, api: str) -> dict[str, Path]:
        venue = get_json(f"{api}{BASE}/venues/")[0]
        sections = get_json(f"{api}{BASE}/venues/{venue['id']}/sections/?event_date="
                            f"{self.days[0]}")
        tokens = self.work / "tokens.txt"
        tokens.write_text("".join(
            mint_token(self.env["JWT_SECRET"], user_id=f"fan-{i}",
                       email=f"fan-{i}@example.com") + "\n"
            for i in range(self.args.fans)))
        # Each section listed once per 100 seats: blocks fill at the same pace.
        targets = self.work / "targets.txt"
        targets.write_text("".join(
            f"{s['id']} {day}\n" for day in self.days for s in sections
            for _ in range(max(1, s["capacity"] // 100))))
        paths = self.work / "sections_paths.txt"
        paths.write_text("".join(f"{BASE}/venues/{venue['id']}/sections/?event_date={day}\n"
                                 for day in self.days))
        return {"tokens": tokens, "targets": targets, "sections": paths}

    def measure(self, endpoint: str, *, api: str, ceiling: str, files: dict[str, Path],
                connections: int, seconds: float) -> dict[str, Any]:
        if endpoint.startswith("hold"):
            # "hold": guest fans, each its own address (X-Forwarded-For, trusted from the
            # load balancer's 127.0.0.1); "hold-jwt": each fan signed in with its own JWT.
            fans = str(files["tokens"]) if endpoint == "hold-jwt" else f"guests:{self.args.fans}"
            return run_wrk(f"{api}{BASE}/holds/create/", "hold.lua",
                           [fans, str(files["targets"]), str(self.args.quantity)],
                           connections=connections, threads=self.args.threads,
                           seconds=seconds, timeout=self.args.timeout)
        if endpoint == "sections":
            return run_wrk(api, "get.lua", [str(files["sections"])], connections=connections,
                           threads=self.args.threads, seconds=seconds, timeout=self.args.timeout)
        return run_wrk(f"{ceiling}/{endpoint}", "get.lua", [], connections=connections,
                       threads=self.args.threads, seconds=seconds, timeout=self.args.timeout)

    def run(self) -> None:
        a = self.args
        log = self.work / "servers.log"
        redis_cmd = ["redis-server", "--port", str(self.redis_port), "--save", "",
                     "--appendonly", "no", "--dir", str(self.work)]
        with process(redis_cmd, env=self.env, log=log) as redis_child:
            self.redis_session = redis_child.pid
            self._wait_redis()
            amphi(self.env, "migrate")
            self.reload_blocks()
            for workers in a.workers:
                self.run_workers(workers)

    def cpu(self, server: int) -> dict[str, float]:
        """CPU seconds so far of the server under test, Redis and wrk (per request once
        divided): where each endpoint's time goes, on the 2 cores they share."""
        used = {"server": session_cpu(server), "redis": session_cpu(self.redis_session),
                "wrk": children_cpu()}
        return {**used, "total": sum(used.values())}

    def _wait_redis(self) -> None:
        wait_for_redis(self.redis_port)

    def run_workers(self, workers: int) -> None:
        a = self.args
        api_port, ceiling_port = free_port(), free_port()
        api_cmd = [sys.executable, "-m", "runtime.cli", "serve", "--port", str(api_port),
                   "--workers", str(workers)]
        # Served exactly as the API is (runtime/serving.py).
        ceiling_cmd = [sys.executable, "-m", "runtime.cli", "serve", "--port", str(ceiling_port),
                       "--workers", str(workers), "--app", "loadtests.ceiling_app:create_app"]
        api, ceiling = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{ceiling_port}"
        with (process(api_cmd, env=self.env, log=self.work / "api.log") as api_child,
              process(ceiling_cmd, env=self.env, log=self.work / "ceiling.log") as ceil):
            wait_http(f"{ceiling}/noop", ceil)
            wait_http(f"{api}/healthz", api_child)
            files = self.files(api)
            for connections in a.connections:
                for repeat in range(a.repeat):
                    for endpoint in a.endpoints:
                        if repeat == 0 and a.warmup > 0:
                            self.measure(endpoint, api=api, ceiling=ceiling, files=files,
                                         connections=connections, seconds=a.warmup)
                        if endpoint.startswith("hold"):
                            self.reload_blocks()
                        load = os.getloadavg()[0]
                        server = ceil.pid if endpoint in CEILINGS else api_child.pid
                        before = self.cpu(server)
                        result = self.measure(endpoint, api=api, ceiling=ceiling,
                                              files=files, connections=connections,
                                              seconds=a.seconds)
                        used = self.cpu(server)
                        result["cpu_us"] = {
                            k: round((used[k] - before[k]) / result["requests"] * 1e6, 1)
                            for k in used}
                        result.update(endpoint=endpoint, workers=workers,
                                      connections=connections, repeat=repeat,
                                      loadavg_before=round(load, 2))
                        self.results.append(result)
                        print(_line(result), flush=True)


# -- summary --------------------------------------------------------------------------------
def _line(r: dict[str, Any]) -> str:
    extra = f" ok {r['ok_share']:.1%}" if r["endpoint"].startswith("hold") else ""
    errs = f" socket errors {r['socket_errors']}" if r["socket_errors"] else ""
    return (f"  {r['workers']} proc {r['connections']:>5} conn {r['endpoint']:<9}"
            f" {r['ok_rps']:>9,.0f} ok/s  p50 {r['p50_ms']:>7.1f} ms  p99 {r['p99_ms']:>7.1f} ms"
            f"  statuses {r['statuses']}{extra}{errs}")


def summarise(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median (and range) over repeats of each (workers, connections, endpoint), with the
    ratio of its successful throughput to the ceilings measured in the same run."""
    groups: dict[tuple[int, int, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["workers"], r["connections"], r["endpoint"]), []).append(r)
    rows = []
    for (workers, connections, endpoint), runs in sorted(groups.items()):
        rps = [r["ok_rps"] for r in runs]
        rows.append({
            "workers": workers, "connections": connections, "endpoint": endpoint,
            "ok_rps": statistics.median(rps), "ok_rps_min": min(rps), "ok_rps_max": max(rps),
            "p50_ms": statistics.median(r["p50_ms"] for r in runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "p99_ms_max": max(r["p99_ms"] for r in runs),
            "ok_share": round(sum(r["ok"] for r in runs) / sum(r["requests"] for r in runs), 4),
            "statuses": _sum_statuses(runs),
            "socket_errors": sum(sum(r["socket_errors"].values()) for r in runs),
            "runs": len(runs),
            "cpu_us": {k: statistics.median(r["cpu_us"][k] for r in runs)
                       for k in runs[0]["cpu_us"]},
        })
    by_key = {(r["workers"], r["connections"], r["endpoint"]): r for r in rows}
    for r in rows:
        for ceiling in CEILINGS:
            c = by_key.get((r["workers"], r["connections"], ceiling))
            r[f"ratio_{ceiling.replace('-', '_')}"] = (
                round(r["ok_rps"] / c["ok_rps"], 3) if c else None)
    return rows


def _sum_statuses(runs: list[dict[str, Any]]) -> dict[int, int]:
    total: dict[int, int] = {}
    for r in runs:
        for k, v in r["statuses"].items():
            total[k] = total.get(k, 0) + v
    return dict(sorted(total.items()))


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_key = {(r["workers"], r["connections"], r["endpoint"]): r for r in rows}
    checks = []
    for workers in sorted({r["workers"] for r in rows}):
        at100 = by_key.get((workers, 100, "hold"))
        at1000 = by_key.get((workers, 1000, "hold"))
        if at100 and at100["ratio_evalsha"] is not None:
            checks.append({"workers": workers, "check": "holds/s >= 0.8 x EVALSHA at 100",
                           "value": at100["ratio_evalsha"],
                           "met": at100["ratio_evalsha"] >= TARGET_RATIO_100})
            checks.append({"workers": workers, "check": "p99 < 50 ms at 100",
                           "value": round(at100["p99_ms"], 1),
                           "met": at100["p99_ms"] < TARGET_P99_MS})
        if at1000:
            unexpected = {k: v for k, v in at1000["statuses"].items()
                          if not (200 <= k < 300 or k in (409, 429))}
            checks.append({"workers": workers,
                           "check": "1000: only 409/429 refusals, no socket errors",
                           "value": {"other_statuses": unexpected,
                                     "socket_errors": at1000["socket_errors"]},
                           "met": not unexpected and at1000["socket_errors"] == 0})
        if at100 and at1000:
            keep = round(at1000["ok_rps"] / at100["ok_rps"], 3)
            checks.append({"workers": workers, "check": "holds/s at 1000 >= 0.7 x at 100",
                           "value": keep, "met": keep >= TARGET_KEEP_1000})
    return checks


def print_summary(rows: list[dict[str, Any]], checks: list[dict[str, Any]]) -> None:
    print("\nmedian over repeats (successful responses a second; ratio to the ceilings)")
    print(f"{'proc':>4} {'conn':>5} {'endpoint':<10} {'ok/s':>8} {'range':>15} {'p50 ms':>7}"
          f" {'p99 ms':>7} {'ok %':>6} {'/evalsha':>8} {'/ev-ap':>6} {'/noop':>6}")
    for r in rows:
        rng = f"{r['ok_rps_min']:,.0f}-{r['ok_rps_max']:,.0f}"
        ratios = [f"{r[k]:.2f}" if r[k] is not None else "-"
                  for k in ("ratio_evalsha", "ratio_evalsha_ap", "ratio_noop")]
        print(f"{r['workers']:>4} {r['connections']:>5} {r['endpoint']:<10} {r['ok_rps']:>8,.0f}"
              f" {rng:>15} {r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f} {r['ok_share']:>6.1%}"
              f" {ratios[0]:>8} {ratios[1]:>6} {ratios[2]:>6}")
    print("\nCPU per request, µs (median): the server under test, Redis, wrk, all three")
    for r in rows:
        cpu = r["cpu_us"]
        print(f"{r['workers']:>4} {r['connections']:>5} {r['endpoint']:<10} {cpu['server']:>8.1f}"
              f" {cpu['redis']:>7.1f} {cpu['wrk']:>7.1f} {cpu['total']:>7.1f}")
    print("\ntargets")
    for c in checks:
        print(f"  {c['workers']} proc  {c['check']:<48} {json.dumps(c['value']):<40}"
              f" {'met' if c['met'] else 'NOT met'}")


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    colors = {"noop": "tab:gray", "evalsha": "tab:blue", "evalsha-ap": "tab:purple",
              "hold": "tab:red",
              "hold-jwt": "tab:orange",
              "sections": "tab:green"}
    for endpoint in ENDPOINTS:
        for workers, style in ((1, "--"), (2, "-")):
            pts = sorted((r["connections"], r["ok_rps"], r["p99_ms"]) for r in rows
                         if r["endpoint"] == endpoint and r["workers"] == workers)
            if not pts:
                continue
            xs = [p[0] for p in pts]
            label = f"{endpoint}, {workers} proc"
            left.plot(xs, [p[1] for p in pts], style, marker="o", color=colors[endpoint],
                      label=label)
            right.plot(xs, [p[2] for p in pts], style, marker="o", color=colors[endpoint],
                       label=label)
    connections = sorted({r["connections"] for r in rows})
    for ax, ylabel in ((left, "successful responses / s"), (right, "p99 latency (ms)")):
        ax.set_xscale("log")
        ax.set_xticks(connections, [f"{c:,}" for c in connections])
        ax.minorticks_off()
        ax.set_xlabel("concurrent connections")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    right.set_yscale("log")
    right.axhline(TARGET_P99_MS, color="black", linewidth=0.8, linestyle=":")
    left.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def _csv_ints(raw: str) -> list[int]:
    return [int(x) for x in raw.split(",") if x]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=int, default=8, help="each measurement")
    p.add_argument("--warmup", type=int, default=2, help="before the first repeat")
    p.add_argument("--repeat", type=int, default=3, help="measurements of each point")
    p.add_argument("--connections", type=_csv_ints, default=[100, 1000])
    p.add_argument("--workers", type=_csv_ints, default=[1, 2], help="API processes")
    p.add_argument("--endpoints", type=lambda s: s.split(","), default=list(ENDPOINTS))
    # One wrk thread: on 2 cores, 2 threads took CPU from the server and reported answers
    # beyond 2 s at 1,000 connections on every endpoint, the no-op included, which neither
    # one thread nor an asyncio client opening 1,000 connections at once ever saw.
    p.add_argument("--threads", type=int, default=1, help="wrk threads")
    p.add_argument("--timeout", type=int, default=2,
                   help="seconds before wrk counts a request as timed out (wrk's default)")
    p.add_argument("--fans", type=int, default=20_000, help="distinct JWTs")
    p.add_argument("--days", type=int, default=30, help="show days (8 blocks each)")
    p.add_argument("--quantity", type=int, default=2, help="seats a hold")
    p.add_argument("--database-url",
                   default="postgresql+psycopg://postgres@127.0.0.1:5432/amphi_bench")
    p.add_argument("--json", type=Path, default=HERE / "results" / "http.json")
    p.add_argument("--plot", type=Path, default=HERE / "results" / "http.png")
    return p.parse_args(argv)


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds the `process` blocks: no server left behind


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _stop)
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    info = machine()
    print(f"{info['nproc']} x {info['cpu']}, {info['ram_gb']} GB RAM, {info['wrk']}, "
          f"load {info['loadavg_at_start'][0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="amphi-bench-") as tmp:
        bench = Bench(args, Path(tmp))
        try:
            bench.run()
        finally:
            api_log = Path(tmp) / "api.log"
            if api_log.exists():
                info["api_log_lines"] = sum(1 for _ in api_log.open("rb"))
    rows = summarise(bench.results)
    checks = targets(rows)
    print_summary(rows, checks)
    info["finished_utc"] = datetime.now(UTC).isoformat(timespec="seconds")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(
        {"machine": info, "settings": {k: str(v) for k, v in vars(args).items()},
         "summary": rows, "targets": checks, "runs": bench.results}, indent=1) + "\n")
    plot(rows, args.plot, f"amphi HTTP benchmark, {info['nproc']} x {info['cpu']}, "
                          f"{info['started_utc']}")
    print(f"\nwrote {args.json} and {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
