"""What only a Redis Cluster can show: blocks spread over nodes, scripts reloaded on the
node that lost them, the whole hold flow across nodes, the connection bound of the API's
async client under a thousand concurrent requests, and the configuration rules that
come with a cluster URL (RQ on a plain Redis; `amphi up` never starts a cluster)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import redis
import redis.asyncio as aredis
from redis.exceptions import MaxConnectionsError

from amphi import errors, keys
from amphi.redis_urls import cluster_nodes
from amphi.settings import Settings, SettingsError
from engine import blocks, scripts
from engine.holds import HoldEngine
from engine.transport.connection import async_client, sync_client
from engine.transport.waiting_cluster import WaitingRedisCluster
from runtime import devservices
from tests._cluster import flush_redis
from tests._servers import free_port
from tests.engine._support import (
    DAY,
    assert_block_ok,
    ga_spec,
    make_engine,
    reserved_spec,
)

# the amphitheatre's eight sections, as setup-venue loads them for one date
SECTIONS = ["orch-left", "orch-center", "orch-right", "loge-left", "loge-center",
            "loge-right", "terrace", "lawn"]


@pytest.fixture
def cluster(redis_cluster_url: str) -> Iterator[redis.RedisCluster]:
    client = sync_client(redis_cluster_url)
    assert isinstance(client, redis.RedisCluster)
    flush_redis(client)
    scripts.load_all(client)
    yield client
    client.close()


@pytest_asyncio.fixture
async def acluster(redis_cluster_url: str,
                   cluster: redis.RedisCluster) -> AsyncIterator[WaitingRedisCluster]:
    client = async_client(redis_cluster_url, max_connections=32)
    assert isinstance(client, WaitingRedisCluster)
    yield client
    await client.aclose()


def load_sections(client: redis.RedisCluster) -> list[keys.BlockKeys]:
    out = []
    for section in SECTIONS:
        block = keys.BlockKeys(DAY, section)
        spec = ga_spec(block, 500) if section == "lawn" else reserved_spec(block, 10, 20)
        assert blocks.load_block(client, spec) == "created"
        out.append(block)
    return out


def script_cached(node_client: redis.Redis, name: str) -> bool:
    return bool(node_client.script_exists(scripts.script(name).sha)[0])


def primary_clients(client: redis.RedisCluster) -> dict[str, redis.Redis]:
    return {n.name: n.redis_connection for n in client.get_primaries()}


def test_blocks_of_a_date_spread_over_the_nodes(cluster: redis.RedisCluster) -> None:
    loaded = load_sections(cluster)
    for block in loaded:
        # every key of a block in one slot: the scripts never cross slots
        block_keys = [block.meta, block.seats, block.holds, block.records, block.ended,
                      block.sales]
        assert len({cluster.keyslot(k) for k in block_keys}) == 1
    assert len({cluster.keyslot(b.meta) for b in loaded}) == len(SECTIONS)
    owners = {cluster.get_node_from_key(b.meta).name for b in loaded}
    assert len(owners) >= 2, f"all {len(SECTIONS)} sections on one node: {owners}"
    # and the data really sits on those nodes
    holding = {name for name, node in primary_clients(cluster).items() if node.dbsize()}
    assert owners <= holding and len(holding) >= 2
    assert blocks.loaded_blocks(cluster) == sorted(loaded, key=lambda b: b.section)


async def test_hold_release_and_availability_across_nodes(
    cluster: redis.RedisCluster, acluster: WaitingRedisCluster
) -> None:
    loaded = load_sections(cluster)
    engine = make_engine(acluster)
    made = [await engine.create(block, 2 + i % 3, owner=f"u{i}", client=f"u{i}")
            for i, block in enumerate(loaded)]
    counted = await engine.availability(loaded)  # one pipeline spanning every node
    assert [c.held for c in counted if c] == [h.quantity for h in made]

    for hold in made:  # located through the blocks index, a key outside any block
        got = await engine.get(hold.hold_id)
        assert (got.status, got.seats) == ("active", hold.seats)
    before = await engine.now_ms()  # TIME, on whichever node answers
    released = [await engine.release(h.hold_id, requester=h.owner) for h in made[::2]]
    assert {r.status for r in released} == {"released"}
    assert all(r.ended_ms is not None and r.ended_ms >= before - 1000 for r in released)

    counted = await engine.availability(loaded)
    expected_held = [0 if i % 2 == 0 else h.quantity for i, h in enumerate(made)]
    assert [c.held for c in counted if c] == expected_held
    assert [c.available for c in counted if c] == [
        c.capacity - held for c, held in zip(counted, expected_held, strict=True) if c
    ]
    with pytest.raises(errors.Forbidden):
        await engine.release(made[1].hold_id, requester="someone-else")
    for block in loaded:
        assert_block_ok(cluster, block)


async def test_picks_seat_maps_and_my_holds_across_nodes(
    cluster: redis.RedisCluster, acluster: WaitingRedisCluster
) -> None:
    """One fan's holds in blocks on several nodes, listed together (the index is a key of
    its own slot); a pick and a seat map in each block's slot."""
    loaded = [b for b in load_sections(cluster) if b.section != "lawn"]
    engine = make_engine(acluster)
    made = [await engine.create(block, 2, owner="fan", client="user:fan", picks=[3, 4],
                                holder="user:fan") for block in loaded[:4]]
    assert all(h.seats == [3, 4] for h in made)
    with pytest.raises(errors.SeatsUnavailable):
        await engine.create(loaded[0], 1, owner="", client="guest:x", picks=[4])
    seat_map = await engine.seat_map(loaded[0])
    assert seat_map is not None and seat_map.seats[:6] == "000HH0"
    mine, _ = await engine.holds_of("user:fan")
    assert sorted(h.hold_id for h in mine) == sorted(h.hold_id for h in made)
    await engine.release(made[0].hold_id, requester="fan")
    mine, _ = await engine.holds_of("user:fan")
    assert len(mine) == 3
    for block in loaded:
        assert_block_ok(cluster, block)


async def test_script_flush_on_every_node(cluster: redis.RedisCluster,
                                          acluster: WaitingRedisCluster) -> None:
    loaded = load_sections(cluster)
    engine = make_engine(acluster)
    nodes = primary_clients(cluster)
    owner = {b: cluster.get_node_from_key(b.meta).name for b in loaded}

    assert cluster.script_flush()  # SCRIPT FLUSH on every primary
    assert not any(script_cached(n, "create_hold") for n in nodes.values())
    first = loaded[0]
    hold = await engine.create(first, 2, owner="u1", client="u1")
    assert hold.status == "active"
    # reloaded on the node that answered NOSCRIPT, and only there
    assert {name for name, n in nodes.items() if script_cached(n, "create_hold")} == \
        {owner[first]}

    # availability pipelines EVALSHA to every node; each node that lost it reloads it
    assert not any(script_cached(n, "availability") for n in nodes.values())
    counted = await engine.availability(loaded)
    assert [c.held for c in counted if c] == [2] + [0] * (len(loaded) - 1)
    assert {name for name, n in nodes.items() if script_cached(n, "availability")} == \
        set(owner.values())

    cluster.script_flush()
    assert (await engine.release(hold.hold_id, requester="u1")).status == "released"
    cluster.script_flush()
    assert blocks.sweep(cluster) == 0  # synchronous path, every block, after a flush
    assert blocks.load_block(cluster, reserved_spec(loaded[1], 10, 20)) == "refreshed"
    for block in loaded:
        assert_block_ok(cluster, block)


# -- the async client's connection bound -----------------------------------------------------
CONCURRENT = 1000
LIMIT = 8


async def spike(client: aredis.RedisCluster, loaded: list[keys.BlockKeys], *,
                autopipeline: bool = False) -> list:
    """CONCURRENT requests at once, as an API process gets them during an on-sale spike:
    holds in every section, and availability pipelines over all of them. Without the
    auto-pipeline by default: each hold is a command of its own, as many at once as there
    are requests, which is what the client's bound is for."""
    engine = HoldEngine(client, ttl_seconds=600, max_quantity=8, max_active_per_owner=4,
                        rate_limit_per_minute=0, autopipeline=autopipeline)

    async def request(i: int) -> object:
        if i % 4 == 3:
            return await engine.availability(loaded)
        return await engine.create(loaded[i % len(loaded)], 1, owner=f"u{i}", client=f"u{i}")

    return await asyncio.gather(*(request(i) for i in range(CONCURRENT)),
                                return_exceptions=True)


@pytest.mark.parametrize("autopipeline", [False, True], ids=["commands", "autopipelined"])
async def test_a_thousand_concurrent_requests_wait_for_a_connection(
    cluster: redis.RedisCluster, redis_cluster_url: str, autopipeline: bool
) -> None:
    loaded = load_sections(cluster)
    client = async_client(redis_cluster_url, max_connections=LIMIT)
    try:
        results = await spike(client, loaded, autopipeline=autopipeline)
        failures = [r for r in results if isinstance(r, BaseException)]
        assert not failures, repr(failures[0])
        opened = {n.name: len(n._connections) for n in client.get_nodes()}
        assert max(opened.values()) <= LIMIT, opened
        assert len([n for n in opened.values() if n]) > 1  # several nodes served the spike
        if not autopipeline:  # every node at its bound, or near
            assert sum(opened.values()) > LIMIT
    finally:
        await client.aclose()
    holds = sum(1 for i in range(CONCURRENT) if i % 4 != 3)
    held = sum(int(cluster.hget(b.meta, "held")) for b in loaded)
    assert held == holds
    for block in loaded:
        assert_block_ok(cluster, block)


async def test_control_redis_py_cluster_client_fails_at_its_limit(
    cluster: redis.RedisCluster, redis_cluster_url: str
) -> None:
    """The same spike through redis-py's own asyncio RedisCluster with the same limit:
    it raises MaxConnectionsError instead of waiting, which is what the test above
    would catch."""
    loaded = load_sections(cluster)
    plain, _nodes = cluster_nodes(redis_cluster_url)
    client = aredis.RedisCluster.from_url(plain, max_connections=LIMIT)
    try:
        await client.initialize()
        results = await spike(client, loaded)
    finally:
        await client.aclose()
    assert any(isinstance(r, MaxConnectionsError) for r in results)


async def test_waiting_gives_up_after_its_timeout(redis_cluster_url: str,
                                                  cluster: redis.RedisCluster) -> None:
    """A command that cannot get a connection in time fails as a pool timeout does."""
    client = async_client(redis_cluster_url, max_connections=1, timeout=0.2)
    try:
        block = keys.BlockKeys(DAY, "slow")
        cluster.set(block.seats, "x")
        # one blocking command holds the only admission ...
        slow = asyncio.create_task(client.blpop(["amphi:test:empty"], timeout=1))
        await asyncio.sleep(0.1)
        # ... so the next one waits, then gives up
        with pytest.raises(redis.ConnectionError, match="No connection available"):
            await client.get(block.seats)
        assert await slow is None
        assert await client.get(block.seats) == b"x"  # and the client still works
    finally:
        await client.aclose()


# -- configuration ---------------------------------------------------------------------------
def test_a_cluster_redis_url_needs_a_plain_rq_redis_url() -> None:
    cluster_url = "redis+cluster://10.0.0.1:7000,10.0.0.2:7000"
    with pytest.raises(SettingsError, match="RQ_REDIS_URL"):
        Settings.from_env({"REDIS_URL": cluster_url})
    with pytest.raises(SettingsError, match="not a Redis Cluster URL"):
        Settings.from_env({"REDIS_URL": cluster_url,
                           "RQ_REDIS_URL": "redis+cluster://10.0.0.3:7000"})
    with pytest.raises(SettingsError, match="not a Redis Cluster URL"):
        Settings.from_env({"RQ_REDIS_URL": "rediss+cluster://10.0.0.3:7000"})
    with pytest.raises(SettingsError, match="database index"):
        Settings.from_env({"REDIS_URL": "redis+cluster://10.0.0.1:7000/3",
                           "RQ_REDIS_URL": "redis://10.0.0.9:6379/0"})
    ok = Settings.from_env({"REDIS_URL": cluster_url, "RQ_REDIS_URL": "redis://10.0.0.9:6379/1"})
    assert (ok.redis_url, ok.rq_url) == (cluster_url, "redis://10.0.0.9:6379/1")
    # a plain REDIS_URL still serves RQ too when RQ_REDIS_URL is unset
    assert Settings.from_env({"REDIS_URL": "redis://10.0.0.9:6379/2"}).rq_url == \
        "redis://10.0.0.9:6379/2"


def test_cluster_urls_parse() -> None:
    assert cluster_nodes("rediss+cluster://u:p%40ss@a.example:7000,b.example:7001?x=1") == (
        "rediss://u:p%40ss@a.example:7000?x=1", [("a.example", 7000), ("b.example", 7001)])
    assert cluster_nodes("redis+cluster://a") == ("redis://a", [("a", 6379)])
    with pytest.raises(ValueError):
        cluster_nodes("redis://a:6379")


def test_devservices_uses_a_cluster_that_answers(redis_cluster_url: str, tmp_path: Path,
                                                 services: devservices.Services) -> None:
    with devservices.ensure_services(redis_cluster_url, services.database_url,
                                     state_dir=str(tmp_path)) as found:
        assert found.redis_url == redis_cluster_url
        assert not [s for s in found.started if "redis" in s or "valkey" in s]


def test_devservices_never_starts_a_cluster(tmp_path: Path,
                                            services: devservices.Services) -> None:
    dead = f"redis+cluster://127.0.0.1:{free_port()}"
    with pytest.raises(RuntimeError, match="never starts a cluster"), \
            devservices.ensure_services(dead, services.database_url, state_dir=str(tmp_path)):
        pass
    assert not any(tmp_path.iterdir())  # nothing was started there
