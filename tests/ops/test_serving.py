"""`amphi serve --workers N` (runtime/serving.py): each API process listens on its own
SO_REUSEPORT socket, so a burst of new connections is spread over the processes; a process
that dies is replaced; SIGTERM stops them all; a process that cannot start stops the
server, with uvicorn's start-up failure code."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from amphi.settings import Settings
from tests._servers import amphi_env, child_server, free_port
from tests.ops._support import AMPHI

WORKERS = 2
# The API's start-up reads the ledger: migrated, even when this module runs alone.
pytestmark = pytest.mark.usefixtures("ledger_engine")


def children(pid: int) -> list[int]:
    """The API processes of `amphi serve` (multiprocessing's resource tracker aside)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split() if not _is_resource_tracker(p)]


def _is_resource_tracker(pid: str) -> bool:
    try:
        return b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:  # it exited since pgrep saw it (the killed process, reaped)
        return True


def sockets_on(port: int, state: str) -> set[int]:
    """Inodes of the local TCP sockets on `port` in `state` (/proc/net/tcp's hex code)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == state:
            inodes.add(int(fields[9]))
    return inodes


ESTABLISHED, LISTEN = "01", "0A"


def all_listening(url: str, port: int) -> bool:
    """Every API process listens (the first to start would otherwise take every
    connection), and the server answers."""
    return (len(sockets_on(port, LISTEN)) == WORKERS
            and httpx.get(f"{url}/healthz", timeout=1).status_code == 200)


def sockets_of(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def serve(port: int, *extra: str, workers: int = WORKERS) -> list[str]:
    return [AMPHI, "serve", "--workers", str(workers), "--host", "127.0.0.1",
            "--port", str(port), *extra]


@pytest.mark.slow
def test_a_burst_of_connections_is_spread_over_the_processes(settings: Settings,
                                                             tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with child_server(serve(port), env=amphi_env(settings),
                      log_path=tmp_path / "serve.log", name="amphi serve", timeout=30,
                      answers=lambda: all_listening(url, port)) as server:
        workers = children(server.pid)
        assert len(workers) == WORKERS
        # 100 keep-alive connections opened at once, as a load balancer or wrk opens them;
        # one request on each, so that every one has been accepted.
        conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(100)]
        try:
            for conn in conns:
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            for conn in conns:
                assert conn.recv(4096).startswith(b"HTTP/1.1 200")
            ours = sockets_on(port, ESTABLISHED)
            held = {pid: len(sockets_of(pid) & ours) for pid in workers}
        finally:
            for conn in conns:
                conn.close()
    assert sum(held.values()) == 100, held
    # By the kernel's hash: about 50 each (one in a million runs below 25). Sharing one
    # socket, as uvicorn's --workers does, one process could take them all.
    assert min(held.values()) >= 25, held


@pytest.mark.slow
def test_a_dead_process_is_replaced_and_sigterm_stops_them_all(settings: Settings,
                                                              tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with child_server(serve(port), env=amphi_env(settings), log_path=log,
                      name="amphi serve", timeout=30,
                      answers=lambda: httpx.get(f"{url}/healthz", timeout=1).status_code == 200,
                      ) as server:
        first = children(server.pid)
        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:  # a new process, serving
            now = children(server.pid)
            if len(now) == WORKERS and first[0] not in now:
                try:
                    if all(httpx.get(f"{url}/healthz", timeout=1).status_code == 200
                           for _ in range(20)):
                        break
                except httpx.TransportError:
                    pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert "an API process exited; starting another" in log.read_text()
        serving = children(server.pid)
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
    for pid in serving:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(
            f"/proc/{pid}/status").read_text().lower(), f"API process {pid} outlived the server"


@pytest.mark.parametrize("workers", [1, WORKERS])
def test_a_process_that_cannot_start_stops_the_server(settings: Settings,
                                                      workers: int) -> None:
    port = free_port()
    proc = subprocess.run(serve(port, "--app", "api.app:no_such_factory", workers=workers),
                          env=amphi_env(settings), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr  # uvicorn's start-up failure
    if workers > 1:
        assert "failed to start" in proc.stderr


@pytest.mark.parametrize("workers", [1, WORKERS])
def test_a_port_in_use_is_refused_at_once(settings: Settings, workers: int) -> None:
    """Not shared: the API processes' SO_REUSEPORT would let them join another server."""
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(serve(port, workers=workers), env=amphi_env(settings),
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in proc.stderr


@pytest.mark.slow
def test_an_idle_keep_alive_connection_still_answers_after_seconds(settings: Settings,
                                                                   tmp_path: Path) -> None:
    """A pooled client connection, idle for a few seconds, then reused: uvicorn's default
    closed it after 5 s, and a request sent as it closed got no answer (the spike's
    RemoteDisconnected). The server keeps it open longer than clients and balancers do."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with child_server(serve(port, workers=1), env=amphi_env(settings),
                      log_path=tmp_path / "serve.log", name="amphi serve", timeout=30,
                      answers=lambda: httpx.get(f"{url}/healthz", timeout=1).status_code == 200):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            first = None
            for pause in (0, 6.5):
                time.sleep(pause)
                conn.request("GET", "/healthz")  # http.client never reconnects by itself
                response = conn.getresponse()
                assert (response.status, response.read()) == (200, b'{"status":"ok"}'), pause
                first = first or conn.sock
                assert conn.sock is first, "not the same connection"
        finally:
            conn.close()
