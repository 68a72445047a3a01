"""The capacity model (amphi/capacity.py): pure arithmetic over the measured costs."""

from __future__ import annotations

from amphi.capacity import UTILISATION, Buyer, Machine, default_rate, peak_polls, plan
from amphi.waiting_room import poll_after


def test_fans_far_back_poll_rarely() -> None:
    assert [poll_after(w) for w in (0, 19, 20, 150, 299, 300, 10_000)] == [
        2, 2, 2, 15, 29, 30, 30]
    # 60,000 fans at 1,200 a minute: the line's polls are a fraction of a 5-second poll's
    polls = peak_polls(60_000, 1_200)
    assert 2_000 < polls < 60_000 / 5 / 4


def test_more_admissions_need_more_of_everything() -> None:
    slow, fast = plan(60_000, 600), plan(60_000, 6_000)
    assert slow.drain_minutes == 100 and fast.drain_minutes == 10
    for resource in ("api", "redis", "worker", "postgres"):
        assert fast.needs[resource] > slow.needs[resource], resource
    # buyers only, no line: the needs are the buyer's cost at the rate, at UTILISATION
    alone = plan(1, 600)
    assert abs(alone.needs["worker"] - 10 * Buyer().cost().worker / UTILISATION) < 1e-9


def test_what_saturates_first() -> None:
    busy = plan(60_000, 6_000)
    where, load = busy.saturates_first(Machine(api_cores=16, worker_processes=1))
    assert where == "worker" and load > 1
    where, load = busy.saturates_first(Machine(api_cores=1, worker_processes=16,
                                               postgres_cores=8))
    assert where == "api" and load > 1
    shared = busy.saturates_first(Machine.single(2))
    assert shared == ("the machine", sum(busy.needs.values()) / 2)


def test_the_default_rate_is_the_highest_the_machine_carries() -> None:
    machine = Machine.single(2)
    rate = default_rate(machine, 60_000)
    assert rate % 60 == 0 and rate >= 60
    assert plan(60_000, rate).saturates_first(machine)[1] <= 1.0
    assert plan(60_000, rate + 60).saturates_first(machine)[1] > 1.0
    assert default_rate(Machine.single(16), 60_000) > 5 * rate
