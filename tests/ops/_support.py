"""Helpers of the operations tests: `amphi` run as its real console script with its own
environment, a purchase over HTTP, and reading the reconcile table."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import Engine

from amphi.settings import Settings
from tests._servers import amphi_env
from tests.engine._support import assert_block_ok
from tests.payments._support import (
    REPO,
    assert_block_matches_ledger,
    bearer,
    block_of,
    checkout,
    confirm,
    make_hold,
)

AMPHI = str(Path(sys.executable).with_name("amphi"))
BLOCKS = 24  # the test venue: 3 days x 8 sections
FIXED = "drift found and fixed; no oversold seat"
CLEAN = f"no drift in {BLOCKS} blocks; no oversold seat"
NOT_FIXED = "DRIFT; no oversold seat (run with --fix)"


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def finding(self, day: str, section: str, kind: str) -> str:
        """The table's line naming `kind` in one block (fails if there is none)."""
        found = [ln for ln in self.out.splitlines()
                 if ln.strip().startswith(f"{day} {section}: {kind}:")]
        assert len(found) == 1, (day, section, kind, self.out)
        return found[0]

    def block_row(self, day: str, section: str) -> list[str]:
        """The block's summary row, split on runs of spaces (its drift column may hold
        several words)."""
        rows = [ln for ln in self.out.splitlines() if ln.startswith(f"{day}  {section} ")]
        assert len(rows) == 1, (day, section, self.out)
        return rows[0].split()

    @property
    def verdict(self) -> str:
        return self.out.rstrip().splitlines()[-1]


def reconcile(settings: Settings, *args: str, timeout: float = 60) -> Run:
    """`amphi reconcile ARGS` as an operator runs it."""
    proc = subprocess.run([AMPHI, "reconcile", *args], cwd=REPO, env=amphi_env(settings),
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return Run(proc.returncode, proc.stdout, proc.stderr)


@dataclass(frozen=True)
class Purchase:
    hold: dict[str, Any]
    order_id: str


async def buy(api: httpx.AsyncClient, settings: Settings, section_id: str, quantity: int,
              fan: str, *, day: str = "2027-06-19", pay: bool = True) -> Purchase:
    """A fan's purchase: hold, checkout and (unless `pay` is False) the demo confirm."""
    headers = bearer(settings, fan)
    hold = await make_hold(api, section_id, quantity, headers=headers, day=day)
    order = await checkout(api, hold["hold_id"], email=f"{fan}@example.com", headers=headers)
    if pay:
        resp = await confirm(api, order["order_id"], headers=headers)
        assert resp.status_code == 200 and resp.json()["data"]["status"] == "COMPLETED", resp.text
    return Purchase(hold, order["order_id"])


def assert_agrees(client: redis.Redis, engine: Engine, section: str, day: str) -> None:
    """The block keeps the engine's invariants and sells exactly the ledger's tickets."""
    assert_block_ok(client, block_of(section, day))
    assert_block_matches_ledger(client, engine, section, day)
