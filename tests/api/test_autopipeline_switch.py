"""REDIS_AUTOPIPELINE through the API: a burst of holds over HTTP shares Redis round trips
when it is on (the batch metric counts them), goes one script a request when it is off,
and makes the same holds either way."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from amphi import metrics
from amphi.settings import Settings, SettingsError
from tests.api._support import BASE, VenueFixture, data, hold_body

CREATE = f"{BASE}/holds/create/"
BURST = 30


def batches() -> tuple[float, float]:
    """(batches sent, commands in them) so far in this process."""
    count = sum_ = 0.0
    for family in metrics.REDIS_BATCH.collect():
        for sample in family.samples:
            if sample.name.endswith("_count"):
                count = sample.value
            elif sample.name.endswith("_sum"):
                sum_ = sample.value
    return count, sum_


def test_the_switch_reads_the_usual_spellings() -> None:
    for raw, expected in (("", True), ("1", True), ("true", True), ("On", True),
                          ("0", False), ("false", False), ("no", False), ("off", False)):
        assert Settings.from_env({"REDIS_AUTOPIPELINE": raw}).redis_autopipeline is expected
    with pytest.raises(SettingsError, match="REDIS_AUTOPIPELINE"):
        Settings.from_env({"REDIS_AUTOPIPELINE": "maybe"})


@pytest.mark.parametrize("on", [True, False], ids=["on", "off"])
async def test_a_burst_of_holds_with_the_switch(open_api: Any, venue: VenueFixture,
                                                on: bool) -> None:
    section = venue.sections["Terrace"]
    async with open_api(redis_autopipeline=on, hold_rate_limit_per_minute=0,
                        hold_max_active_per_owner=BURST) as api:
        before = batches()
        replies = await asyncio.gather(*(api.post(CREATE, json=hold_body(section, 1))
                                         for _ in range(BURST)))
        after = batches()
    holds = [data(r, 201) for r in replies]
    seats = {(s["row"], s["seat"]) for h in holds for s in h["seats"]}
    assert len(seats) == BURST  # one seat each, none twice
    sent, commands = after[0] - before[0], after[1] - before[1]
    if on:
        assert commands == BURST and 1 <= sent < BURST, (sent, commands)
    else:
        assert (sent, commands) == (0, 0)
