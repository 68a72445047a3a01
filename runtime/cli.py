"""`amphi`: the one console script for every operator task."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import date
from typing import TYPE_CHECKING, Any, cast

from amphi import logs
from amphi.settings import Settings, SettingsError
from amphi.venue_time import next_festival_dates, show_day_over

if TYPE_CHECKING:
    from services.reconcile import Sources

log = logging.getLogger("amphi")


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from ledger.migrate import upgrade
    from runtime.devservices import create_database_if_missing

    create_database_if_missing(settings.database_url)
    upgrade(settings.database_url)
    print("database schema is up to date")
    return 0


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"--event-dates: {text!r} is not a date (YYYY-MM-DD)") from None


def _event_dates(settings: Settings, raw: list[str] | None) -> list[date]:
    if not raw:
        return next_festival_dates(settings.venue_timezone)
    days = []
    for day in map(_parse_date, raw):
        if show_day_over(day, settings.venue_timezone):
            raise SystemExit(
                f"--event-dates: {day} is over in {settings.venue_timezone}; it cannot go on sale"
            )
        days.append(day)
    return days


def _ledger_sources(settings: Settings) -> Sources:
    """What reconcile and the venue's setup read and repair: Redis, the ledger, the
    payments, the queue, the signing key (services.reconcile.Sources)."""
    from rq import Queue

    from amphi.payments import gateway
    from amphi.signing import load_signer
    from engine import scripts
    from engine.transport.connection import queue_client, sync_client
    from ledger.db import session_factory, sync_engine
    from services import queueing, reconcile

    hold_redis = sync_client(settings.redis_url)
    scripts.load_all(hold_redis)
    return reconcile.sources(
        hold_redis, session_factory(sync_engine(settings.database_url)), gateway(settings),
        Queue(queueing.DEFAULT, connection=queue_client(settings.rq_url)),
        load_signer(settings.ticket_signing_key, settings.ticket_signing_key_file),
    )


def cmd_setup_venue(settings: Settings, args: argparse.Namespace) -> int:
    from services.venue import set_up_venue

    days = _event_dates(settings, args.event_dates)
    src = _ledger_sources(settings)
    try:
        done = set_up_venue(src, days)
    finally:
        src.sessions.kw["bind"].dispose()
        src.redis.close()
    report = done.ledger
    print(
        f"venue {'created' if report.venue_created else 'present'}; "
        f"sections created: {len(report.sections_created)}; "
        f"event dates created: {', '.join(map(str, report.dates_created)) or 'none'}; "
        f"seat blocks created: {report.blocks_created}; "
        f"redis blocks loaded: {done.blocks_created} new, {done.blocks_refreshed} refreshed"
    )
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from runtime.serving import serve

    metrics_dir = None
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each API process writes its counters here; /metrics in any process sums them all.
        metrics_dir = tempfile.mkdtemp(prefix="amphi-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        serve(args.app, host=args.host, port=args.port, workers=args.workers)
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from workers.queues import default_processes, run_worker

    run_worker(settings, burst=args.burst, with_cron=not args.no_cron,
               processes=args.processes or default_processes(),
               email_processes=args.email_processes or default_processes())
    return 0


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    """Everything for development: Redis, PostgreSQL, schema, venue, API and worker."""
    from runtime.devservices import ensure_services

    with ensure_services(
        settings.redis_url, settings.database_url, state_dir=".embedded/dev"
    ) as services:
        for line in services.started:
            print(f"started {line}")
        env = {**os.environ, "REDIS_URL": services.redis_url,
               "DATABASE_URL": services.database_url}
        settings = settings.replace(redis_url=services.redis_url,
                                    database_url=services.database_url)
        cmd_migrate(settings, args)
        cmd_setup_venue(settings, argparse.Namespace(event_dates=args.event_dates))
        exe = [sys.executable, "-m", "runtime.cli"]
        children = [
            subprocess.Popen([*exe, "serve", "--host", args.host, "--port", str(args.port),
                              "--workers", str(args.workers)], env=env),
            subprocess.Popen([*exe, "worker"], env=env),
        ]
        base = f"http://{args.host}:{args.port}"
        print(f"amphi is up: {base}/api/tickets/amphitheater/venues/  (Ctrl-C stops everything)\n"
              f"  admin: {base}/admin/ (ADMIN_USERNAME / ADMIN_PASSWORD, admin / admin in "
              f"development); health: {base}/readyz; metrics: {base}/metrics", flush=True)
        stopping = False

        def stop(*_: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and all(c.poll() is None for c in children):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
        # Popen.args is whatever was passed (typed as any command form): here a list
        failed = [cast(list[str], c.args)[3] for c in children
                  if c.returncode not in (0, -signal.SIGTERM)]
        if failed and not stopping:
            print(f"stopped because a process exited: {', '.join(map(str, failed))}")
            return 1
    return 0


def cmd_reconcile(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0: Redis, ledger and Stripe agree (or --fix made them agree); 1: drift left."""
    from datetime import timedelta

    from tqdm import tqdm

    from runtime.reconcile_report import format_report
    from services import reconcile

    src = _ledger_sources(settings)
    stale = (args.stale_after if args.stale_after is not None
             else max(60, 3 * settings.sweep_interval_seconds))
    dates = {_parse_date(d) for d in args.event_dates} if args.event_dates else None
    report = reconcile.reconcile(
        src, fix=args.fix, dates=dates,
        stale_after=timedelta(seconds=stale), stuck_after=timedelta(minutes=args.stuck_after),
        progress=lambda items, **kw: tqdm(items, file=sys.stderr, **kw),
    )
    print(format_report(report, fixed=args.fix))
    return 1 if report.drift_left else 0


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    """A development JWT for the API's Bearer auth."""
    from datetime import timedelta

    from api.auth import mint_token

    print(mint_token(settings.jwt_secret, user_id=args.sub, email=args.email,
                     is_staff=args.staff, ttl=timedelta(hours=args.hours)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="amphi", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def serve_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=8000)
        p.add_argument("--workers", type=int, default=1,
                       help="API processes, each on its own SO_REUSEPORT socket")

    def date_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--event-dates", nargs="+", metavar="YYYY-MM-DD",
                       help="show days (default: June 19-21 of the next festival)")

    up = sub.add_parser("up", help="start everything for development (Ctrl-C stops)")
    serve_options(up)
    date_options(up)
    up.set_defaults(func=cmd_up)

    sub.add_parser("migrate", help="create or upgrade the ledger schema").set_defaults(
        func=cmd_migrate
    )
    setup = sub.add_parser("setup-venue", help="create the venue and load its blocks")
    date_options(setup)
    setup.set_defaults(func=cmd_setup_venue)

    serve = sub.add_parser("serve", help="run the API under uvicorn")
    serve_options(serve)
    serve.add_argument("--app", default="api.app:app_from_env", metavar="MODULE:FACTORY",
                       help="the ASGI app factory to serve (the benchmark serves its "
                            "ceilings this way)")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run the RQ worker and the hold sweeper")
    worker.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    worker.add_argument("--no-cron", action="store_true", help="do not schedule the sweeper")
    worker.add_argument("--processes", type=int, default=0, metavar="N",
                        help="processes issuing tickets (default: one per CPU core)")
    worker.add_argument("--email-processes", type=int, default=0, metavar="N",
                        help="processes sending emails, at a lower CPU priority (default: one "
                             "per CPU core)")
    worker.set_defaults(func=cmd_worker)

    rec = sub.add_parser("reconcile", help="compare Redis, the ledger and Stripe; --fix repairs")
    rec.add_argument("--fix", action="store_true",
                     help="rebuild drifted blocks from the ledger, finalise paid orders")
    rec.add_argument("--event-dates", nargs="+", metavar="YYYY-MM-DD",
                     help="only these show days (default: every block)")
    rec.add_argument("--stale-after", type=int, default=None, metavar="SECONDS",
                     help="a hold this long past its expiry is drift (default: 60, or 3 "
                          "sweep intervals)")
    rec.add_argument("--stuck-after", type=float, default=15, metavar="MINUTES",
                     help="a payment this old without tickets is drift (default: 15)")
    rec.set_defaults(func=cmd_reconcile)

    token = sub.add_parser("token", help="print a development JWT (HS256, JWT_SECRET)")
    token.add_argument("--sub", default="dev-user", help="user id (claim sub)")
    token.add_argument("--email", default="fan@example.com")
    token.add_argument("--staff", action="store_true", help="claim is_staff (gate scanning)")
    token.add_argument("--hours", type=float, default=12, help="lifetime")
    token.set_defaults(func=cmd_token)

    from runtime import waiting_room_cli
    waiting_room_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    from redis.exceptions import ConnectionError as RedisUnreachable
    from sqlalchemy.exc import OperationalError

    try:
        return args.func(settings, args)
    except RedisUnreachable as exc:
        print(f"cannot reach Redis ({exc}); is REDIS_URL right?", file=sys.stderr)
    except OperationalError as exc:
        print(f"cannot reach the database ({exc.orig}); is DATABASE_URL right?", file=sys.stderr)
    return 3


if __name__ == "__main__":
    sys.exit(main())
