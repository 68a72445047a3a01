"""The waiting rooms in Redis: joining, the room's state (admission advanced on read), the
turns of admitted fans, and the operator's settings. Each room's keys share one hash tag
(amphi/keys.py RoomKeys); the index of rooms is one key of its own."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, date, datetime
from typing import Any

from amphi.keys import RoomKeys, rooms_index
from amphi.waiting_room import RoomConfig, RoomState
from engine import scripts
from engine.codecs import text
from engine.transport.autopipeline import AutoPipeline

CLOSED_ROOM_TTL_SECONDS = 86_400  # a closed room's state stays a day, for status and audit


def parse_state(reply: list[Any]) -> RoomState | None:
    """lua/room_admit.lua's reply."""
    if text(reply[0]) == "none":
        return None
    state, *numbers = reply
    return RoomState(text(state), *(int(n) for n in numbers))


# -- the API's calls (async) --------------------------------------------------------------------
async def join(client: scripts.AsyncClient, day: date, identity: str, *,
               via: AutoPipeline | None = None) -> tuple[str, int, int, bool]:
    """(outcome, number, now_ms, new) from lua/room_join.lua: ('pre', 0, ..), ('pos',
    position, ..), ('closed', 0, ..) or ('early', prequeue_ms, ..); `new`: this call gave
    the fan their place. `via`: the hold engine's auto-pipeline,
    so that the joins of a rush share round trips as holds do."""
    score = secrets.randbits(52)  # uniform and exact as a double: the pre-queue's draw
    keys = RoomKeys(day)
    reply = await scripts.arun(client, "room_join", keys.script_keys(), [identity, score],
                               via=via)
    return text(reply[0]), int(reply[1]), int(reply[2]), reply[3] == 1


async def state(client: scripts.AsyncClient, day: date) -> RoomState | None:
    """The room now, admission advanced to Redis' clock; None without a room."""
    reply = await scripts.arun(client, "room_admit", RoomKeys(day).script_keys(), [])
    return parse_state(reply)


async def open_rooms(client: scripts.AsyncClient) -> dict[date, str]:
    """Every room that is not closed, by date, with its state."""
    found = await client.hgetall(rooms_index())
    return {date.fromisoformat(text(d)): text(s) for d, s in found.items()
            if text(s) != "closed"}


async def turn_ends_ms(client: scripts.AsyncClient, day: date, position: int) -> int | None:
    """When the turn of the admitted fan at `position` ends; None if it has (expired,
    ended by their order, or by an operator)."""
    ends = await client.zscore(RoomKeys(day).turns, str(position))
    return int(ends) if ends is not None and ends > time.time() * 1000 else None


async def record_hold(client: scripts.AsyncClient, day: date, hold_id: str,
                      position: int) -> None:
    """The hold was made on the turn of `position`: its completed order ends that turn."""
    await client.hset(RoomKeys(day).holds, hold_id, position)


# -- finalisation's call (sync) -----------------------------------------------------------------
def end_turns_of_holds(client: scripts.Client, holds: list[tuple[date, str]]) -> int:
    """The orders made from these holds (date, hold_id) completed: the turns they were made
    on end, and their slots go to the next fans. Two pipelined round trips for the batch;
    returns how many turns ended (holds not made through a room end none)."""
    if not holds:
        return 0
    pipe = client.pipeline(transaction=False)
    for day, hold_id in holds:
        pipe.hget(RoomKeys(day).holds, hold_id)
    positions = pipe.execute()
    ended = [(day, hold_id, p) for (day, hold_id), p in zip(holds, positions, strict=True) if p]
    for day, hold_id, position in ended:
        keys = RoomKeys(day)
        pipe.zrem(keys.turns, position)
        pipe.hdel(keys.holds, hold_id)
    if ended:
        pipe.execute()
    return len(ended)


# -- the operator's calls (sync) ----------------------------------------------------------------
def configure(client: scripts.Client, config: RoomConfig) -> None:
    """Open the room with `config`, or change an open or paused room's settings live."""
    keys = RoomKeys(config.event_date)
    pipe = client.pipeline(transaction=True)
    pipe.hsetnx(keys.config, "epoch", 1)
    pipe.hsetnx(keys.config, "state", "open")
    pipe.hset(keys.config, mapping={
        "prequeue_ms": int(config.prequeue_at.timestamp() * 1000),
        "on_sale_ms": int(config.on_sale_at.timestamp() * 1000),
        "rate_per_minute": config.rate_per_minute,
        "max_active": config.max_active,
        "turn_seconds": config.turn_seconds,
    })
    for key in keys.all():
        pipe.persist(key)  # a room closed and opened again is kept
    pipe.hget(keys.config, "state")
    state = text(pipe.execute()[-1])
    if state == "closed":
        set_state(client, config.event_date, "open")
    else:
        client.hset(rooms_index(), config.event_date.isoformat(), state)


def set_state(client: scripts.Client, day: date, new_state: str) -> None:
    """open | paused | closed. Pausing stops admission (admitted fans keep their turns);
    closing ends the room: holds need no token for that date any more."""
    keys = RoomKeys(day)
    pipe = client.pipeline(transaction=True)
    pipe.hset(keys.config, "state", new_state)
    if new_state == "closed":
        for key in keys.all():
            pipe.expire(key, CLOSED_ROOM_TTL_SECONDS)
    pipe.execute()
    client.hset(rooms_index(), day.isoformat(), new_state)


def revoke_all(client: scripts.Client, day: date) -> int:
    """Void every admission token of the room (a new epoch): admitted fans whose turn goes
    on get a new one at their next poll. Returns the new epoch."""
    return int(client.hincrby(RoomKeys(day).config, "epoch", 1))


def end_turn(client: scripts.Client, day: date, position: int) -> bool:
    """End one admitted fan's turn now (abuse): their token stops working at once."""
    return bool(client.zrem(RoomKeys(day).turns, str(position)))


def listed(client: scripts.Client) -> dict[date, str]:
    """Every room, closed ones included (for a day after closing), by date, with its state."""
    return {date.fromisoformat(text(d)): text(s)
            for d, s in client.hgetall(rooms_index()).items()}


def exists(client: scripts.Client, day: date) -> bool:
    return bool(client.exists(RoomKeys(day).config))


def room_state(client: scripts.Client, day: date) -> RoomState | None:
    return parse_state(scripts.run(client, "room_admit", RoomKeys(day).script_keys(), []))


def config_of(client: scripts.Client, day: date) -> RoomConfig | None:
    """The room's settings as the operator last set them; None without a room."""
    raw = {text(k): int(v) for k, v in client.hgetall(RoomKeys(day).config).items()
           if text(k) in _CONFIG_FIELDS}
    if len(raw) < len(_CONFIG_FIELDS):
        return None
    return RoomConfig(day, _utc(raw["prequeue_ms"]), _utc(raw["on_sale_ms"]),
                      raw["rate_per_minute"], raw["max_active"], raw["turn_seconds"])


_CONFIG_FIELDS = ("prequeue_ms", "on_sale_ms", "rate_per_minute", "max_active", "turn_seconds")


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
