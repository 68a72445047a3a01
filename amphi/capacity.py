"""The on-sale's capacity model: from the measured CPU of each step a fan takes, what an
on-sale of `fans` at an admission rate needs (API cores, Redis, workers, PostgreSQL), which
saturates first on a given machine, and the admission rate a machine can carry.

The figures are CPU time per request or per order, measured on the benchmark machine
(2-core AMD EPYC) by the benchmarks named beside each; rerun them on other hardware and
pass the results in. docs/waiting-room.md#capacity-model explains the model and plans an
on-sale past this machine with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from amphi.waiting_room import poll_after

UTILISATION = 0.7  # plan every resource to 70 % busy: the rest absorbs bursts and noise


@dataclass(frozen=True, slots=True)
class StepCost:
    """CPU seconds per request (API) or per order (the rest), by resource."""
    api: float = 0.0
    redis: float = 0.0
    worker: float = 0.0
    postgres: float = 0.0


# loadtests/bench_queue.py (2026-12-05 22:09, a 2-core Xeon): a join, a poll (answered ahead
# of the router, api/queue_polls.py), a first poll after the start. That run measured them at
# 3.2, 1.8 and 2.7 times its no-op request (36 µs); scaled to bench_http's no-op (26 µs), so
# that every figure here is of one machine state.
JOIN = StepCost(api=84e-6, redis=11e-6)
POLL = StepCost(api=47e-6)
FIRST_POLL = StepCost(api=70e-6, redis=11e-6)
# loadtests/bench_http.py (2026-11-24, 2 processes): cached sections, a hold
SECTIONS = StepCost(api=56e-6, redis=4e-6)
HOLD = StepCost(api=82e-6, redis=24e-6)
# loadtests/bench_purchase.py (docs/performance.md): checkout (open loop); the webhook with
# its finalisation in batches; the confirmation email with its QR codes
CHECKOUT = StepCost(api=2.8e-3, redis=0.2e-3, postgres=0.5e-3)
PAYMENT = StepCost(api=2.3e-3, redis=0.3e-3, worker=3.5e-3, postgres=2.5e-3)
EMAIL = StepCost(worker=6.9e-3, postgres=0.5e-3)


@dataclass(frozen=True, slots=True)
class Buyer:
    """What an admitted fan does: looks at the map, holds (again after a refusal), buys."""
    sections_views: float = 3.0
    holds: float = 1.5
    buys: float = 1.0  # checkouts that are paid; each has its email

    def cost(self) -> StepCost:
        steps = [(SECTIONS, self.sections_views), (HOLD, self.holds),
                 (CHECKOUT, self.buys), (PAYMENT, self.buys), (EMAIL, self.buys)]
        return StepCost(*(sum(getattr(s, r) * n for s, n in steps) for r in _RESOURCES))


_RESOURCES = ("api", "redis", "worker", "postgres")


@dataclass(frozen=True, slots=True)
class Machine:
    api_cores: float
    redis_shards: int = 1  # one core each: Redis runs scripts on one thread
    worker_processes: int = 2
    postgres_cores: float = 1.0
    shared: bool = False  # everything on the same `api_cores` (one machine, as `amphi up`)

    @classmethod
    def single(cls, cores: float) -> Machine:
        return cls(api_cores=cores, shared=True)


@dataclass(frozen=True, slots=True)
class Plan:
    fans: int
    rate_per_minute: int
    drain_minutes: float  # until the last fan of the line is admitted
    peak_polls_per_second: float  # at the start, everyone polling at their pace
    needs: dict[str, float] = field(default_factory=dict)  # cores (processes) per resource

    def saturates_first(self, machine: Machine) -> tuple[str, float]:
        """The resource most loaded on `machine`, and its load (1.0: at UTILISATION)."""
        if machine.shared:
            return "the machine", sum(self.needs.values()) / machine.api_cores
        have = {"api": machine.api_cores, "redis": machine.redis_shards,
                "worker": machine.worker_processes, "postgres": machine.postgres_cores}
        loads = {r: self.needs[r] / have[r] for r in _RESOURCES}
        worst = max(loads, key=lambda r: loads[r])
        return worst, loads[worst]


def peak_polls(fans: int, rate_per_minute: int) -> float:
    """Polls a second at the on-sale start, when the whole line waits: the fan at place i
    waits i / rate and polls when the API tells them (amphi.waiting_room.poll_after)."""
    per_second = rate_per_minute / 60
    return sum(1 / poll_after(int(i / per_second)) for i in range(1, fans + 1))


def plan(fans: int, rate_per_minute: int, *, buyer: Buyer | None = None,
         join_seconds: float = 600.0) -> Plan:
    """The cores each resource needs at the busiest moment, at UTILISATION: the start (the
    line's peak polls, the first polls that learn the drawn places over `POLL` s, buyers at
    the rate) or the pre-queue (`fans` joining over `join_seconds`), whichever is more."""
    buyer_cost = (buyer or Buyer()).cost()
    buyers_per_second = rate_per_minute / 60
    polls = peak_polls(fans, rate_per_minute)
    start_phase = {r: polls * getattr(POLL, r)
                   + fans / 30 * getattr(FIRST_POLL, r)  # first polls spread over 30 s
                   + buyers_per_second * getattr(buyer_cost, r) for r in _RESOURCES}
    join_phase = {r: fans / join_seconds * getattr(JOIN, r) for r in _RESOURCES}
    needs = {r: max(start_phase[r], join_phase[r]) / UTILISATION for r in _RESOURCES}
    return Plan(fans, rate_per_minute, fans / rate_per_minute, round(polls), needs)


def default_rate(machine: Machine, fans: int) -> int:
    """The highest admission rate (fans a minute, a multiple of 60) at which no resource of
    `machine` is loaded beyond UTILISATION for an on-sale of `fans`; at least 60."""
    low, high = 1, 100_000
    while low < high:  # in fans a second
        mid = (low + high + 1) // 2
        if plan(fans, mid * 60).saturates_first(machine)[1] <= 1.0:
            low = mid
        else:
            high = mid - 1
    return low * 60
