"""The on-sale spike command end to end: `python -m loadtests.spike` runs Locust headless
against a live amphi (a child uvicorn on this suite's Redis db and database), writes its
CSV and HTML reports, reconciles the same storage and exits 0; fans really paid. Then drift
injected into what the run sold makes its reconcile step say DRIFT and return 1."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine

from amphi.settings import Settings
from loadtests import spike
from tests._servers import REPO, amphi_env, uvicorn_server
from tests.api._support import EVENT_DAYS, VenueFixture
from tests.payments._support import SECTION, block_of, block_state, rows

pytestmark = pytest.mark.slow  # a ~10 s Locust run and two reconcile processes

VERDICT_OK = "reconcile: no drift, no oversold seat"
VERDICT_DRIFT = "reconcile: DRIFT after the load run (see above)"


def stats(path: Path) -> dict[str, dict[str, str]]:
    """Locust's `<out>_stats.csv`, one row a request name (and "Aggregated")."""
    with path.open(newline="") as f:
        return {row["Name"]: row for row in csv.DictReader(f)}


def free_a_sold_seat(client: redis.Redis) -> tuple[str, str]:
    """Mark one sold reserved seat free in Redis, as a lost write would; returns the block
    (day, section slug) it was done to."""
    for day in EVENT_DAYS:
        for name, section in SECTION.items():
            block = block_of(name, day)
            sold = block_state(client, block).indices("S")
            if sold:
                client.setrange(block.seats, sold[0], "0")
                return day, section.slug
    raise AssertionError("the spike sold no reserved seat")


def test_spike_runs_reports_and_reconciles(settings: Settings, venue: VenueFixture,
                                           redis_client: redis.Redis, ledger_engine: Engine,
                                           tmp_path: Path,
                                           capfd: pytest.CaptureFixture[str]) -> None:
    env = amphi_env(settings)
    out = tmp_path / "spike"
    with uvicorn_server("api.app:app_from_env", env=env, log_dir=tmp_path) as url:
        run = subprocess.run(
            [sys.executable, "-m", "loadtests.spike", "--host", url, "--peak", "30",
             "--ramp", "2", "--plateau", "6", "--tail", "2", "--out", str(out)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert VERDICT_OK in run.stdout.splitlines(), output

    table = stats(Path(f"{out}_stats.csv"))
    total = table["Aggregated"]
    assert int(total["Request Count"]) > 0, total
    assert int(total["Failure Count"]) == 0, total
    assert int(table["hold"]["Request Count"]) > 0, table.keys()
    assert Path(f"{out}.html").stat().st_size > 0
    completed = rows(ledger_engine,
                     "SELECT count(*) AS n FROM orders WHERE status = 'completed'")[0]["n"]
    assert completed >= 1, output

    # The negative control: the same reconcile step, after a sold seat was lost in Redis.
    capfd.readouterr()
    day, slug = free_a_sold_seat(redis_client)
    assert spike.reconcile(env) == 1
    said = capfd.readouterr().out
    assert said.rstrip().splitlines()[-1] == VERDICT_DRIFT, said
    assert any(ln.startswith(f"{day}  {slug} ") and ln.split()[-1] == "sold_not_in_redis"
               for ln in said.splitlines()), said
