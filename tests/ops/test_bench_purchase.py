"""The purchase benchmark end to end with tiny numbers: `python -m loadtests.bench_purchase`
starts its own redis-server, database, API and worker, and its JSON has every phase with
every order completed, its tickets issued and its email sent. A smoke test of the benchmark
(and of the purchase path under a little concurrency), not a measurement."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.slow  # ~30 s: servers started, migrated, a wrk second, 50 orders

REPO = Path(__file__).resolve().parents[2]
DATABASE_URL = os.environ.get(
    "TEST_BENCH_PURCHASE_DATABASE_URL",
    "postgresql+psycopg://postgres@127.0.0.1:5432/amphi_test_bench_purchase",
)
ORDERS, CONFIRMS, RATE = 20, 10, 20  # RATE webhooks a second for 1 s: 20 more orders
PHASES = ("hold_baseline", "warmup", "checkout", "burst", "emails", "rate_checkout", "offered",
          "confirm_checkout", "confirms", "final")


def _requirements() -> None:
    for tool, package in (("wrk", "wrk"), ("redis-server", "redis-server")):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install -y {package}): the "
                        "benchmark needs it")
    server = make_url(DATABASE_URL).set(drivername="postgresql", database="postgres")
    try:
        psycopg.connect(server.render_as_string(hide_password=False), connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL for the benchmark at {server.host}:{server.port} ({exc})")


def test_tiny_benchmark_completes_every_phase(tmp_path: Path) -> None:
    _requirements()
    out, png = tmp_path / "purchase.json", tmp_path / "purchase.png"
    run = subprocess.run(
        [sys.executable, "-m", "loadtests.bench_purchase", "--orders", str(ORDERS),
         "--confirms", str(CONFIRMS), "--warmup", "5", "--concurrency", "10",
         "--baseline-seconds", "1", "--baseline-connections", "10",
         "--webhook-rate", str(RATE), "--rate-seconds", "1", "--days", "2",
         "--timeout", "30", "--database-url", DATABASE_URL, "--json", str(out),
         "--plot", str(png)],
        cwd=REPO, capture_output=True, text=True, timeout=150, check=False)
    output = run.stdout[-4000:] + run.stderr[-4000:]
    assert run.returncode == 0, output
    result = json.loads(out.read_text())
    assert result["error"] is None, output
    phases = result["phases"]
    assert set(PHASES) <= set(phases), (sorted(phases), output)

    assert phases["hold_baseline"]["ok"] > 0, phases["hold_baseline"]
    for name, count in (("checkout", ORDERS), ("rate_checkout", RATE),
                        ("confirm_checkout", CONFIRMS)):
        assert phases[name]["checked_out"] == count, phases[name]
    for name, count in (("burst", ORDERS), ("offered", RATE)):
        phase = phases[name]
        assert phase["handled"] == {"True": count}, phase
        assert phase["completed"] == count and phase["all_completed"], phase
        assert phase["tickets_ok"] == count, phase  # 2 seats, 2 festival passes each
        assert phase["webhook_to_tickets"]["n"] == count, phase
        assert phase["finalised_per_s"] > 0, phase
    assert phases["emails"]["received"] == ORDERS and phases["emails"]["all_received"]
    confirms = phases["confirms"]
    assert confirms["confirmed"] == CONFIRMS and confirms["all_completed"], confirms
    assert confirms["tickets_ok"] == CONFIRMS, confirms
    final = phases["final"]
    assert final["completed_orders"] == ORDERS + RATE + CONFIRMS, final
    assert final["emails"] == final["completed_orders"], final

    failed = [c for c in result["checks"] if not c["met"]]
    assert not failed, failed
    assert len(result["targets"]) == 6, result["targets"]  # checked, not necessarily met
    assert {row["phase"] for row in result["summary"]} >= {"checkouts", "demo confirms"}
    assert result["timelines"]["burst"], result["timelines"]
    if importlib.util.find_spec("matplotlib") is not None:
        assert png.stat().st_size > 0
