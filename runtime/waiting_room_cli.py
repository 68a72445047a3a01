"""`amphi queue ...`: the operator opens, paces, pauses, resumes and closes the waiting room
of an event date (engine/waiting_room.py), and plans its pace (amphi/capacity.py)."""

from __future__ import annotations

import argparse
import os
from datetime import date, datetime
from zoneinfo import ZoneInfo

from amphi import capacity, errors
from amphi.settings import Settings
from amphi.waiting_room import DEFAULT_TURN_SECONDS, RoomConfig, changed_config, iso_ms


def _when(text: str, tz: str) -> datetime:
    """ISO 8601; without an offset, in the venue's time zone; 'now' for now."""
    if text == "now":
        return datetime.now(ZoneInfo(tz))
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"{text!r} is not a time (ISO 8601, e.g. 2027-06-01T10:00-07:00)"
                         ) from None
    return at if at.tzinfo else at.replace(tzinfo=ZoneInfo(tz))


def cmd_queue(settings: Settings, args: argparse.Namespace) -> int:
    from engine import waiting_room as rooms
    from engine.transport.connection import sync_client

    if args.action == "plan":
        return print_plan(args)
    if args.event_date is None:
        raise SystemExit("--event-date is needed")
    client = sync_client(settings.redis_url)
    day: date = args.event_date
    try:
        if args.action == "open":
            current = rooms.config_of(client, day)
            config = _config(settings, args, current)
            rooms.configure(client, config)
            print(f"waiting room for {day} {'updated' if current else 'open'}: "
                  f"pre-queue from {config.prequeue_at.isoformat()}, on sale at "
                  f"{config.on_sale_at.isoformat()}, {config.rate_per_minute or 'any'} fans "
                  f"a minute, at most {config.max_active or 'any'} shopping, "
                  f"turns of {config.turn_seconds // 60} min")
            return 0
        if not rooms.exists(client, day):
            print(f"no waiting room for {day}")
            return 1
        if args.action in ("pause", "resume", "close"):
            state = {"pause": "paused", "resume": "open", "close": "closed"}[args.action]
            rooms.set_state(client, day, state)
            print(f"waiting room for {day}: {state}")
        elif args.action == "revoke":
            print(f"waiting room for {day}: every admission token void (epoch "
                  f"{rooms.revoke_all(client, day)})")
        elif args.action == "end-turn":
            if args.position is None:
                raise SystemExit("--position is needed")
            ended = rooms.end_turn(client, day, args.position)
            print(f"waiting room for {day}: the turn of position {args.position} "
                  f"{'ended; its admission token no longer works' if ended else 'was not running'}")
        room = rooms.room_state(client, day)
        if room is not None:
            print(f"{day}: {room.state}; on sale at {iso_ms(room.on_sale_ms)}; "
                  f"{room.prequeue} in the pre-queue, {room.last} placed, {room.admitted} "
                  f"admitted, {room.waiting} waiting, {room.active} shopping, "
                  f"{room.turns_expired} turns ran out")
        return 0
    except errors.DomainError as exc:
        print(f"refused: {exc.message}")
        return 2
    finally:
        client.close()


def _config(settings: Settings, args: argparse.Namespace,
            current: RoomConfig | None) -> RoomConfig:
    """The options given, over the room's current settings (or the defaults of a new room)."""
    tz = settings.venue_timezone
    if current is None and args.rate is None and args.max_active is None:
        args.rate = capacity.default_rate(capacity.Machine.single(args.cores), args.fans)
        print(f"admission rate from the capacity model: {args.rate} fans a minute "
              f"({args.fans} fans, {args.cores} cores; set --rate to choose)")
    return changed_config(
        args.event_date, current, now=datetime.now(ZoneInfo(tz)),
        prequeue_at=_when(args.prequeue_at, tz) if args.prequeue_at else None,
        on_sale_at=_when(args.on_sale_at, tz) if args.on_sale_at else None,
        rate_per_minute=args.rate, max_active=args.max_active,
        turn_seconds=None if args.turn_minutes is None else int(args.turn_minutes * 60))


def print_plan(args: argparse.Namespace) -> int:
    """What an on-sale of --fans at --rate needs (amphi/capacity.py), and the rate this
    machine (--cores, everything on it) can carry."""
    machine = capacity.Machine.single(args.cores)
    rate = args.rate or capacity.default_rate(machine, args.fans)
    p = capacity.plan(args.fans, rate)
    where, load = p.saturates_first(machine)
    print(f"{args.fans} fans at {rate} a minute: the line drains in "
          f"{p.drain_minutes:.0f} min; {p.peak_polls_per_second:,} polls/s at the start")
    print("cores needed at 70 % busy: " + ", ".join(
        f"{name} {need:.2f}" for name, need in p.needs.items()))
    print(f"on {args.cores} shared cores: {where} at {load:.0%} of its plan; this machine "
          f"carries {capacity.default_rate(machine, args.fans)} fans a minute")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    queue = sub.add_parser("queue", help="the waiting room of an event date: open (or change "
                                         "live), pause, resume, close, revoke, status")
    queue.add_argument("action", choices=["open", "pause", "resume", "close", "revoke",
                                          "end-turn", "status", "plan"])
    queue.add_argument("--event-date", type=date.fromisoformat, metavar="YYYY-MM-DD")
    queue.add_argument("--on-sale-at", metavar="TIME",
                       help="when admission starts (ISO 8601; the venue's zone without an "
                            "offset; 'now')")
    queue.add_argument("--prequeue-at", metavar="TIME",
                       help="when fans may join (default: now); those who join before the "
                            "on-sale are put in a random order at the start")
    queue.add_argument("--rate", type=int, metavar="FANS", help="admissions per minute")
    queue.add_argument("--max-active", type=int, metavar="FANS",
                       help="at most this many admitted fans shopping at once")
    queue.add_argument("--turn-minutes", type=float, metavar="MINUTES",
                       help=f"how long an admitted fan may hold and pay (default: "
                            f"{DEFAULT_TURN_SECONDS // 60})")
    queue.add_argument("--position", type=int, metavar="N",
                       help="end-turn: the admitted fan whose turn to end (abuse)")
    queue.add_argument("--fans", type=int, default=60_000,
                       help="expected fans (plan, and open's default rate)")
    queue.add_argument("--cores", type=int, default=os.cpu_count() or 1,
                       help="cores of the machine that runs everything (plan, and open's "
                            "default rate; default: this one's)")
    queue.set_defaults(func=cmd_queue)
