"""Loads the Lua scripts from `lua/` once and runs them by SHA, surviving SCRIPT FLUSH.

A line ``--!include NAME`` in a script is replaced by ``lua/NAME.lua``, so the block
scripts share one prelude without Lua ever building a key name.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import redis
import redis.asyncio as aredis
from redis.exceptions import NoScriptError

from engine.transport.autopipeline import AutoPipeline

SCRIPT_NAMES = (
    "load_block",
    "availability",
    "seat_map",
    "create_hold",
    "release_hold",
    "sell_hold",
    "rebuild_block",
    "room_join",
    "room_admit",
)


def _read(name: str) -> str:
    return resources.files("lua").joinpath(f"{name}.lua").read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class LuaScript:
    name: str
    source: str
    sha: str


def _expand(name: str) -> str:
    lines = []
    for line in _read(name).splitlines():
        if line.startswith("--!include "):
            lines.append(_read(line.removeprefix("--!include ").strip()))
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


@cache
def script(name: str) -> LuaScript:
    if name not in SCRIPT_NAMES:
        raise KeyError(f"unknown script {name!r}")
    source = _expand(name)
    return LuaScript(name, source, hashlib.sha1(source.encode()).hexdigest())


def all_scripts() -> list[LuaScript]:
    return [script(name) for name in SCRIPT_NAMES]


Client = redis.Redis | redis.RedisCluster
AsyncClient = aredis.Redis | aredis.RedisCluster
Key = str | bytes  # bytes: the hot path's keys, encoded once (engine.codecs)


def load_all(client: Client) -> None:
    """SCRIPT LOAD every script (on every primary of a cluster); a broken one fails here."""
    for s in all_scripts():
        sha = client.script_load(s.source)
        if sha != s.sha:
            raise RuntimeError(f"{s.name}: server computed sha {sha}, expected {s.sha}")


async def aload_all(client: AsyncClient) -> None:
    for s in all_scripts():
        sha = await client.script_load(s.source)
        if sha != s.sha:
            raise RuntimeError(f"{s.name}: server computed sha {sha}, expected {s.sha}")


def _reload(client: Client, s: LuaScript, keys: Sequence[str]) -> None:
    """SCRIPT LOAD where NOSCRIPT came from: on a cluster, the node of the keys' slot."""
    if isinstance(client, redis.RedisCluster) and keys:
        # redis-py leaves the synchronous RedisCluster's methods unannotated
        node = client.get_node_from_key(keys[0])  # type: ignore[no-untyped-call]
        client.execute_command(  # type: ignore[no-untyped-call]
            "SCRIPT LOAD", s.source, target_nodes=node)
    else:
        client.script_load(s.source)


async def _areload(client: AsyncClient, s: LuaScript,
                   key_lists: Sequence[Sequence[Key]]) -> None:
    """SCRIPT LOAD once on every node that answered NOSCRIPT for one of `key_lists`."""
    if isinstance(client, aredis.RedisCluster):
        nodes = {}
        for keys in key_lists:
            # redis-py annotates the key as str; its keyslot() encodes bytes alike
            node = client.get_node_from_key(keys[0])  # type: ignore[arg-type]
            assert node is not None  # None only for replica=True
            nodes[node.name] = node
        await asyncio.gather(*(
            client.execute_command("SCRIPT LOAD", s.source, target_nodes=node)
            for node in nodes.values()
        ))
    else:
        await client.script_load(s.source)


def run(client: Client, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
    s = script(name)
    try:
        return client.evalsha(s.sha, len(keys), *keys, *args)
    except NoScriptError:
        _reload(client, s, keys)
        return client.evalsha(s.sha, len(keys), *keys, *args)


async def arun(client: AsyncClient, name: str, keys: Sequence[Key], args: Sequence[Any], *,
               via: AutoPipeline | None = None) -> Any:
    """Run a script; `via` an auto-pipeline of `client`, to share a round trip with the
    other requests of this event-loop turn."""
    s = script(name)
    evalsha = via.evalsha if via else client.evalsha
    try:
        return await evalsha(s.sha, len(keys), *keys, *args)
    except NoScriptError:
        await _areload(client, s, [keys])
        return await evalsha(s.sha, len(keys), *keys, *args)


async def arun_each(
    client: AsyncClient, name: str, calls: Sequence[tuple[Sequence[str], Sequence[Any]]]
) -> list[Any]:
    """Run one script for several (keys, args) in one pipelined round trip (on a cluster,
    one per node, concurrently). Only the calls that met NOSCRIPT run again."""
    s = script(name)
    replies: list[Any] = [None] * len(calls)
    todo = list(range(len(calls)))
    for attempt in range(2):
        pipe = client.pipeline(transaction=False)
        for i in todo:
            keys, args = calls[i]
            # redis-py's cluster pipeline refuses pipe.evalsha(), yet routes the raw
            # command by its keys' slot like any other
            pipe.execute_command("EVALSHA", s.sha, len(keys), *keys, *args)
        missing = []
        for i, reply in zip(todo, await pipe.execute(raise_on_error=False), strict=True):
            if isinstance(reply, NoScriptError) and not attempt:
                missing.append(i)
            elif isinstance(reply, Exception):
                raise reply
            else:
                replies[i] = reply
        if not missing:
            return replies
        await _areload(client, s, [calls[i][0] for i in missing])
        todo = missing
    raise AssertionError("unreachable")


def run_each(client: Client, name: str,
             calls: Sequence[tuple[Sequence[str], Sequence[Any]]]) -> list[Any]:
    """`arun_each` for a synchronous client: one pipelined round trip for every call. A
    reply that is an error is returned in its place (the caller decides per call)."""
    s = script(name)
    for attempt in range(2):
        pipe = client.pipeline(transaction=False)
        for keys, args in calls:
            pipe.execute_command("EVALSHA", s.sha, len(keys), *keys, *args)
        replies = pipe.execute(raise_on_error=False)
        missing = [keys for (keys, _), r in zip(calls, replies, strict=True)
                   if isinstance(r, NoScriptError)]
        if not missing or attempt:
            return replies
        for keys in missing:  # rare (a SCRIPT FLUSH): load, then run the whole batch again
            _reload(client, s, keys)
    raise AssertionError("unreachable")
