"""/metrics in Prometheus' text format, parsed with prometheus_client's own parser: the
process counters (holds made, refused, released; hold latency) and the totals read from
their source of truth (orders, tickets, scans, queues, expired holds, seats); and with
`amphi serve --workers 2`, counters summed over every API process."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from amphi.settings import Settings
from tests._servers import amphi_env, child_server, free_port
from tests.api._support import DAY, VenueFixture, assert_error, data, hold_body
from tests.ops._support import AMPHI, buy
from tests.payments._support import CREATE_HOLD, bearer, make_hold, rows
from tests.scan._support import JUNE_19, SCAN, Clock, la, scan_api, staff

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(exposition: str) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(exposition) for s in family.samples}


async def scrape(api: httpx.AsyncClient) -> Samples:
    resp = await api.get("/metrics")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain"), resp.headers
    return parse(resp.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def grew(after: Samples, before: Samples, name: str, **labels: str) -> float:
    """How much a process counter grew (they are shared by every app of this process)."""
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.mark.slow
async def test_metrics_count_what_happened(settings: Settings, venue: VenueFixture,
                                           redis_client: redis.Redis,
                                           ledger_engine: Engine) -> None:
    clock = Clock(la(JUNE_19, 18))  # the show day, so the gate admits the ticket
    sections = venue.sections
    async with scan_api(settings, clock) as api:
        before = await scrape(api)
        assert value(before, "amphi_holds_expired_total") == 0

        kept = await make_hold(api, sections["Orchestra Center"], 2,
                               headers=bearer(settings, "fan-a"))
        released = await make_hold(api, sections["Lawn"], 3, headers=bearer(settings, "fan-a"))
        capped = bearer(settings, "fan-capped")
        for _ in range(settings.hold_max_active_per_owner):
            await make_hold(api, sections["Mezzanine Center"], 1, headers=capped)
        assert_error(await api.post(CREATE_HOLD, json=hold_body(sections["Mezzanine Center"], 1),
                                    headers=capped), 429, "too_many_holds")
        resp = await api.post(f"/api/tickets/amphitheater/holds/{released['hold_id']}/release/",
                              headers=bearer(settings, "fan-a"))
        data(resp)
        bought = await buy(api, settings, sections["Orchestra Left"], 2, "buyer")
        code = rows(ledger_engine, "SELECT code FROM tickets WHERE order_id = :id AND "
                                   "kind = 'amphitheater' ORDER BY code LIMIT 1",
                    id=bought.order_id)[0]["code"]
        scanned = data(await api.post(SCAN, json={"code": code, "gate": "amphitheater"},
                                      headers=staff(settings)))
        assert scanned["result"] == "admitted", scanned

    async with scan_api(settings.replace(hold_ttl_seconds=1), clock) as short:
        expiring = await make_hold(short, sections["Terrace"], 4,
                                   headers=bearer(settings, "fan-slow"))
        await asyncio.sleep(1.3)
        after = await scrape(short)  # the scrape's availability call reclaims it

    made = 2 + settings.hold_max_active_per_owner + 1 + 1  # kept, Lawn, capped, bought, Terrace
    assert grew(after, before, "amphi_holds_created_total", kind="reserved") == made - 1
    assert grew(after, before, "amphi_holds_created_total", kind="general_admission") == 1
    assert grew(after, before, "amphi_holds_refused_total", reason="too_many_holds") == 1
    assert grew(after, before, "amphi_holds_released_total") == 1
    assert grew(after, before, "amphi_hold_seconds_count") == made
    assert grew(after, before, "amphi_hold_seconds_sum") > 0

    assert value(after, "amphi_orders", status="completed") == 1
    assert value(after, "amphi_tickets_issued_total", kind="amphitheater") == 2
    assert value(after, "amphi_tickets_issued_total", kind="festival_day") == 2
    assert value(after, "amphi_scans_total", result="admitted") == 1
    assert value(after, "amphi_queue_depth", queue="amphi-email") == 1  # the confirmation
    assert value(after, "amphi_queue_depth", queue="amphi") == 0
    assert value(after, "amphi_queue_failed", queue="amphi") == 0
    # the confirm's payment, accepted to tickets committed: one observation, under a second
    assert grew(after, before, "amphi_finalize_seconds_count") == 1
    assert 0 < grew(after, before, "amphi_finalize_seconds_sum") < 1
    assert grew(after, before, "amphi_finalize_seconds_bucket", le="1.0") == 1
    # Holds that expired (the meta field `expired` each block script counts in Lua)
    assert value(after, "amphi_holds_expired_total") == 1, \
        [k for k in after if "expired" in k[0]]

    def seats(section_slug: str, state: str) -> float:
        return value(after, "amphi_seats", date=DAY, section=section_slug, state=state)

    assert [seats("orch-left", s) for s in ("available", "held", "sold")] == [798, 0, 2]
    assert [seats("orch-center", s) for s in ("available", "held", "sold")] == [1498, 2, 0]
    assert [seats("terrace", s) for s in ("available", "held", "sold")] == [1500, 0, 0]
    assert [seats("lawn", s) for s in ("available", "held", "sold")] == [1500, 0, 0]
    assert [seats("mezz-center", s) for s in ("available", "held", "sold")] == [1196, 4, 0]
    assert kept["hold_id"] and expiring["hold_id"]


def multiproc_dir(server: subprocess.Popen[bytes]) -> Path:
    """The PROMETHEUS_MULTIPROC_DIR `amphi serve` gave its API processes (Linux /proc)."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    for child in children:
        for var in Path(f"/proc/{child}/environ").read_bytes().split(b"\0"):
            if var.startswith(b"PROMETHEUS_MULTIPROC_DIR="):
                return Path(var.split(b"=", 1)[1].decode())
    raise AssertionError(f"no API process of {server.pid} has PROMETHEUS_MULTIPROC_DIR")


def holds_by_process(directory: Path) -> list[float]:
    """Each API process's own count of holds made, read from its file alone."""
    counts = []
    for path in sorted(directory.glob("counter_*.db")):
        with tempfile.TemporaryDirectory() as alone:
            shutil.copy(path, alone)
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=alone)
            counts.append(value(parse(generate_latest(registry).decode()),
                                "amphi_holds_created_total", kind="reserved"))
    return counts


@pytest.mark.slow
def test_counters_are_summed_over_every_api_process(settings: Settings, venue: VenueFixture,
                                                    tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{(port := free_port())}"
    env = amphi_env(settings, HOLD_RATE_LIMIT_PER_MINUTE="0")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # `amphi serve` makes its own
    argv = [AMPHI, "serve", "--workers", "2", "--host", "127.0.0.1", "--port", str(port)]
    log = tmp_path / "serve.log"
    with child_server(argv, env=env, log_path=log, name="amphi serve", timeout=30,
                      answers=lambda: httpx.get(f"{url}/healthz", timeout=1).status_code == 200,
                      ) as server:
        shared = multiproc_dir(server)
        made = 0
        # A connection a request, so the kernel spreads them; go on until both processes
        # have made some, or the test would not show a sum.
        while made < 12 or len([n for n in holds_by_process(shared) if n]) < 2:
            assert made < 60, f"every hold went to one process: {holds_by_process(shared)}"
            resp = httpx.post(f"{url}{CREATE_HOLD}", headers=bearer(settings, f"fan-{made}"),
                              json=hold_body(venue.sections["Terrace"], 1), timeout=10)
            assert resp.status_code == 201, resp.text
            made += 1
        assert sum(holds_by_process(shared)) == made
        for _ in range(8):  # whichever process answers
            resp = httpx.get(f"{url}/metrics", timeout=10)
            assert resp.status_code == 200, resp.text
            samples = parse(resp.text)
            assert value(samples, "amphi_holds_created_total", kind="reserved") == made
            assert value(samples, "amphi_hold_seconds_count") == made
    assert "Traceback" not in log.read_text(), log.read_text()
    assert not shared.exists()  # `amphi serve` removes it when it stops


FORKING_PROCESS = """
import os
from prometheus_client import values
from amphi import metrics
assert values.ValueClass is not values.MutexValue
metrics.HOLDS_RELEASED.inc()
child = os.fork()
if child == 0:
    metrics.HOLDS_RELEASED.inc(5)
    os._exit(0)
os.waitpid(child, 0)
metrics.HOLDS_RELEASED.inc()
print(os.getpid(), child)
"""


def test_a_forked_process_counts_in_its_own_file(tmp_path: Path) -> None:
    """The metrics take the process id from amphi.metrics, not from a system call on every
    update: a forked child must still get a file of its own, or the two would overwrite
    each other's counts."""
    env = {"PATH": "/usr/bin:/bin", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", FORKING_PROCESS], env=env,
                         capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2])
    assert out.returncode == 0, out.stderr
    parent, child = out.stdout.split()
    counters = {p.name for p in tmp_path.glob("counter_*.db")}
    assert counters == {f"counter_{parent}.db", f"counter_{child}.db"}
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))
    samples = parse(generate_latest(registry).decode())
    assert value(samples, "amphi_holds_released_total") == 7
