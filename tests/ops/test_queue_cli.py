"""`amphi queue ...` as an operator runs it: open a room (its default rate from the capacity
model), change its pace live, pause, resume, end one fan's turn, revoke, close; `plan`."""

from __future__ import annotations

import subprocess
from datetime import UTC, date, datetime, timedelta

import redis

from amphi.capacity import Machine, default_rate
from amphi.settings import Settings
from engine import waiting_room as rooms
from tests._servers import amphi_env
from tests.ops._support import AMPHI, REPO

DAY = "2027-06-19"


def queue(settings: Settings, *args: str) -> tuple[int, str]:
    done = subprocess.run([AMPHI, "queue", *args], cwd=REPO, env=amphi_env(settings),
                          capture_output=True, text=True, timeout=60, check=False)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout + done.stderr


def test_an_operator_runs_a_room(settings: Settings, redis_client: redis.Redis) -> None:
    day = date.fromisoformat(DAY)
    code, out = queue(settings, "status", "--event-date", DAY)
    assert code == 1 and "no waiting room" in out

    start = datetime.now(UTC) - timedelta(seconds=1)
    code, out = queue(settings, "open", "--event-date", DAY, "--on-sale-at", start.isoformat(),
                      "--cores", "2")
    rate = default_rate(Machine.single(2), 60_000)
    assert code == 0 and f"admission rate from the capacity model: {rate} fans a minute" in out
    config = rooms.config_of(redis_client, day)
    assert config is not None and config.rate_per_minute == rate
    assert config.turn_seconds == 15 * 60

    code, out = queue(settings, "open", "--event-date", DAY, "--rate", "60",
                      "--max-active", "5")  # live: only what is given changes
    config = rooms.config_of(redis_client, day)
    assert code == 0 and "updated" in out
    assert config is not None and (config.rate_per_minute, config.max_active) == (60, 5)
    assert abs(config.on_sale_at - start) < timedelta(milliseconds=1)

    code, out = queue(settings, "open", "--event-date", DAY, "--rate", "0", "--max-active", "0")
    assert code == 2 and "Admission needs a rate" in out

    assert queue(settings, "pause", "--event-date", DAY)[0] == 0
    room = rooms.room_state(redis_client, day)
    assert room is not None and room.state == "paused"
    assert queue(settings, "resume", "--event-date", DAY)[0] == 0
    assert "the turn of position 7 was not running" in queue(
        settings, "end-turn", "--event-date", DAY, "--position", "7")[1]
    code, out = queue(settings, "revoke", "--event-date", DAY)
    assert code == 0 and "epoch 2" in out
    code, out = queue(settings, "close", "--event-date", DAY)
    assert code == 0 and f"{DAY}: closed" in out
    room = rooms.room_state(redis_client, day)
    assert room is not None and room.state == "closed"


def test_plan(settings: Settings) -> None:
    code, out = queue(settings, "plan", "--fans", "60000", "--rate", "1200", "--cores", "2")
    assert code == 0
    assert "60000 fans at 1200 a minute: the line drains in 50 min" in out
    assert f"this machine carries {default_rate(Machine.single(2), 60_000)} fans a minute" in out
