"""One command for the on-sale spike: Locust headless against a running amphi, its CSV and
HTML reports in loadtests/results/, then `amphi reconcile` on the same Redis and database
to show that nothing drifted and no seat was oversold.

    python -m loadtests.spike [--host http://127.0.0.1:8000] [--peak 500] [--processes 1]
                              [--room [--room-rate 1200]]

`--room`: the on-sale through the waiting room. Before the load, `amphi queue open` for the
first event date, on sale a few seconds later at `--room-rate` fans a minute; every fan
targets that date, the pollers as before and, instead of the buyers, abandoners and
releasers, fans who join the room, wait their turn and buy with their admission token
(QueuedBuyer). `amphi queue close` at the end.

Point REDIS_URL / DATABASE_URL at the service's (the defaults are `amphi up`'s). Exit code:
0 when Locust saw no failures and reconcile found no drift, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOM_ON_SALE_SECONDS = 5  # --room: the on-sale starts this long after the room opens


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="http://127.0.0.1:8000")
    parser.add_argument("--peak", type=int, default=500, help="fans at the peak")
    parser.add_argument("--ramp", type=int, default=10, help="seconds to reach the peak")
    parser.add_argument("--plateau", type=int, default=40, help="seconds at the peak")
    parser.add_argument("--tail", type=int, default=20, help="seconds of the tail")
    parser.add_argument("--processes", type=int, default=1,
                        help="Locust worker processes (-1: one a core)")
    parser.add_argument("--no-purchase", action="store_true",
                        help="buyers hold but never check out or pay: the baseline that "
                             "shows what the purchase path costs holds and polls")
    parser.add_argument("--room", action="store_true",
                        help="open the waiting room of the fans' date first; buyers go "
                             "through it (QueuedBuyer); close it at the end")
    parser.add_argument("--room-rate", type=int, default=1200, metavar="FANS",
                        help="--room: admissions a minute (default: 1200)")
    parser.add_argument("--out", default=str(HERE / "results" / "spike"),
                        help="report prefix (CSV files and .html)")
    args = parser.parse_args(argv)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SPIKE_PEAK": str(args.peak), "SPIKE_RAMP_SECONDS": str(args.ramp),
           "SPIKE_PLATEAU_SECONDS": str(args.plateau), "SPIKE_TAIL_SECONDS": str(args.tail),
           "SPIKE_PURCHASE": "0" if args.no_purchase else "1"}
    locust = [sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless",
              "--host", args.host, "--csv", args.out, "--html", f"{args.out}.html",
              "--only-summary"]
    if args.processes != 1:
        locust += ["--processes", str(args.processes)]
    room_rc, day = 0, ""
    if args.room:
        env["SPIKE_ROOM_DATE"] = day = first_event_date(args.host)
        on_sale = datetime.now(UTC) + timedelta(seconds=ROOM_ON_SALE_SECONDS)
        if queue(env, "open", day, "--on-sale-at", on_sale.isoformat(timespec="seconds"),
                 "--rate", str(args.room_rate)) != 0:
            return 1
    print("$ " + " ".join(locust), flush=True)
    try:
        load_rc = subprocess.call(locust, env=env)
    finally:
        if args.room:
            room_rc = queue(env, "close", day)
    print(f"\nlocust exited {load_rc}; reports: {args.out}_stats.csv, {args.out}.html", flush=True)

    rec_rc = reconcile(env)
    return 0 if load_rc == 0 and rec_rc == 0 and room_rc == 0 else 1


def first_event_date(host: str) -> str:
    """The first event date the server sells (the one whose sections the fans read)."""
    import httpx

    dates = httpx.get(f"{host.rstrip('/')}/api/tickets/amphitheater/event-dates/",
                      timeout=10).json()["data"]
    return str(dates[0]["date"])


def queue(env: Mapping[str, str], action: str, day: str, *options: str) -> int:
    """`amphi queue <action>` for the waiting room of `day`, on the Redis of `env`."""
    command = ["queue", action, "--event-date", day, *options]
    print("$ amphi " + " ".join(command), flush=True)
    return subprocess.call([sys.executable, "-m", "runtime.cli", *command], env=dict(env))


def reconcile(env: Mapping[str, str]) -> int:
    """`amphi reconcile` on the Redis and database of `env` (REDIS_URL, DATABASE_URL), and
    the run's verdict; returns reconcile's exit code (0: no drift, no oversold seat)."""
    print("$ amphi reconcile", flush=True)
    rc = subprocess.call([sys.executable, "-m", "runtime.cli", "reconcile"], env=dict(env))
    if rc == 0:
        print("reconcile: no drift, no oversold seat", flush=True)
    else:
        print("reconcile: DRIFT after the load run (see above)", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
