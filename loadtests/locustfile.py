"""An on-sale spike against a running amphi (`make up`, or `amphi serve` + `amphi worker`).

Every simulated fan signs its own JWT (HS256 with JWT_SECRET, the development secret by
default), so the per-fan rate limit and active-hold cap apply as they do in production.

Fans:
- Poller: opens the venue, then polls section availability for a date every 1-3 s.
- Buyer: holds seats, checks out, pays through the demo confirm, then browses again.
- Abandoner: holds seats, looks at the hold, and walks away (the hold expires).
- Releaser: holds seats and releases them (changed their mind).
- QueuedBuyer, only with SPIKE_ROOM_DATE (`spike.py --room`, which opens the waiting room of
  that date): joins the room, polls its place until admitted, then holds with its admission
  token, checks out and pays. It takes the place of Buyer, Abandoner and Releaser (a hold
  without a token would be refused), and every fan targets that date.
Shape (`SpikeShape`): nobody, then a ramp to SPIKE_PEAK fans within SPIKE_RAMP_SECONDS (the
minute tickets go on sale), a plateau, then a tail as the sale sells out.

Run headless with `python -m loadtests.spike` (it writes the reports and reconciles after).
"""

from __future__ import annotations

import os
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import gevent
import jwt
from locust import FastHttpUser, LoadTestShape, between, events, task

from amphi.settings import DEV_JWT_SECRET

API = "/api/tickets/amphitheater"
QUANTITIES = (1, 2, 2, 2, 3, 4, 4, 6)  # what fans ask for, roughly

# Venue, sections and dates, read once per Locust process at the start.
CATALOG: dict[str, Any] = {}

# SPIKE_ROOM_DATE=YYYY-MM-DD (spike.py --room): a waiting room is open for that date, every fan
# targets it, and the fans who hold go through the room (QueuedBuyer) instead of holding
# directly (Buyer, Abandoner, Releaser); the pollers stay. Unset: QueuedBuyer is left out.
ROOM_DATE = os.environ.get("SPIKE_ROOM_DATE", "")


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


@events.test_start.add_listener
def load_catalog(environment: Any, **_: Any) -> None:
    import httpx

    host = environment.host.rstrip("/")
    def data(path: str, **params: str) -> Any:
        return httpx.get(f"{host}{API}{path}", params=params, timeout=10).json()["data"]

    venue = data("/venues/")[0]
    CATALOG["venue_id"] = venue["id"]
    CATALOG["dates"] = [ROOM_DATE] if ROOM_DATE else [d["date"] for d in data("/event-dates/")]
    sections = data(f"/venues/{venue['id']}/sections/", date=CATALOG["dates"][0])
    CATALOG["sections"] = [s["id"] for s in sections]


class Fan(FastHttpUser):
    """On geventhttpclient (FastHttpUser): python-requests costs several times the CPU per
    request, and at 2,000 fans on this machine the load generator, not the server, set the
    pace and the latencies."""

    abstract = True
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.user_id = f"locust-{uuid.uuid4().hex[:12]}"
        secret = os.environ.get("JWT_SECRET") or DEV_JWT_SECRET
        token = jwt.encode({"sub": self.user_id, "email": f"{self.user_id}@example.com",
                            "exp": datetime.now(UTC) + timedelta(hours=2)}, secret,
                           algorithm="HS256")
        self.auth = {"Authorization": f"Bearer {token}"}
        self.date = random.choice(CATALOG["dates"])

    def poll(self) -> None:
        self.client.get(f"{API}/venues/{CATALOG['venue_id']}/sections/",
                        params={"event_date": self.date}, name="sections", headers=self.auth)

    def hold(self, admission_token: str | None = None) -> str | None:
        """Try for seats; a sold-out or rate-limited answer is a normal outcome. A fan the
        waiting room admitted sends its admission token; a 403 (admission_required) is a
        failure like any other error."""
        body = {"section_id": random.choice(CATALOG["sections"]), "event_date": self.date,
                "quantity": random.choice(QUANTITIES)}
        headers = self.auth
        if admission_token is not None:
            headers = {**self.auth, "X-Admission-Token": admission_token}
        with self.client.post(f"{API}/holds/create/", json=body, name="hold",
                              headers=headers, catch_response=True) as resp:
            if resp.status_code == 201:
                resp.success()
                return resp.json()["data"]["hold_id"]
            if resp.status_code in (409, 429):
                resp.success()  # sold out, no adjacent seats, rate limit, hold cap
                return None
            resp.failure(f"hold: {resp.status_code} {resp.text[:200]}")
            return None

    def purchase(self, hold_id: str) -> None:
        """Check the hold out and pay through the demo confirm."""
        order = self.client.post("/api/payments/amphitheater/checkout/", name="checkout",
                                 headers=self.auth,
                                 json={"hold_id": hold_id, "billing_details": {
                                     "email": f"{self.user_id}@example.com",
                                     "firstName": "Load", "lastName": "Test"}})
        if order.status_code != 200:
            return
        self.client.post("/api/payments/amphitheater/confirm/", name="confirm",
                         headers=self.auth, json={"order_id": order.json()["data"]["order_id"]})


class Poller(Fan):
    weight = 6

    def on_start(self) -> None:
        super().on_start()
        self.client.get(f"{API}/venues/", name="venues", headers=self.auth)
        self.client.get(f"{API}/event-dates/", name="event-dates", headers=self.auth)

    @task
    def refresh(self) -> None:
        self.poll()


# SPIKE_PURCHASE=0: buyers hold but never check out or pay, the same hot-path load without
# the purchase path, to measure what the purchase path costs the holds and the polls.
PURCHASE = os.environ.get("SPIKE_PURCHASE", "1") != "0"


class Buyer(Fan):
    weight = 2
    abstract = bool(ROOM_DATE)

    @task
    def buy(self) -> None:
        self.poll()
        hold_id = self.hold()
        if hold_id is None or not PURCHASE:
            return
        self.purchase(hold_id)


class Abandoner(Fan):
    weight = 1
    abstract = bool(ROOM_DATE)

    @task
    def hold_and_leave(self) -> None:
        hold_id = self.hold()
        if hold_id:
            self.client.get(f"{API}/holds/{hold_id}/", name="hold status", headers=self.auth)


class Releaser(Fan):
    weight = 1
    abstract = bool(ROOM_DATE)

    @task
    def hold_and_release(self) -> None:
        hold_id = self.hold()
        if hold_id:
            self.client.post(f"{API}/holds/{hold_id}/release/", name="release",
                             headers=self.auth)


QUEUE_WAITING = ("pre_queue", "waiting", "paused")  # states in which a fan polls on


class QueuedBuyer(Fan):
    """Through the waiting room of SPIKE_ROOM_DATE: joins, polls its place with the latest
    queue ticket until admitted, holds with its admission token, checks out and pays. Its
    turn is then over, so it starts over as a new fan (a new identity) and joins again; so
    does a fan whose hold was refused (409/429) or whose join or poll failed."""

    weight = 4  # the share of Buyer, Abandoner and Releaser, whose place it takes
    abstract = not ROOM_DATE

    @task
    def queue_and_buy(self) -> None:
        place = self.queue_place(None)
        while place is not None and place["state"] in QUEUE_WAITING:
            gevent.sleep(place["poll_after_seconds"])  # as the API says
            place = self.queue_place(place["queue_ticket"])
        if place is not None:  # admitted
            self.poll()
            hold_id = self.hold(place["admission_token"])
            if hold_id is not None and PURCHASE:
                self.purchase(hold_id)
        self.on_start()  # a new fan for the next journey

    def queue_place(self, queue_ticket: str | None) -> dict[str, Any] | None:
        """Join the room (no ticket yet) or poll it; the fan's place while it waits or once
        admitted, None (a failure) on an error or any other state (turn ended, closed)."""
        if queue_ticket is None:
            call = self.client.post("/api/queue/join/", json={"event_date": self.date},
                                    name="queue join", headers=self.auth, catch_response=True)
        else:
            call = self.client.get("/api/queue/status/", params={"queue_ticket": queue_ticket},
                                   name="queue status", headers=self.auth, catch_response=True)
        with call as resp:
            if resp.status_code != 200:
                resp.failure(f"queue: {resp.status_code} {resp.text[:200]}")
                return None
            place: dict[str, Any] = resp.json()["data"]
            if place["state"] not in (*QUEUE_WAITING, "admitted"):
                resp.failure(f"queue: {place['state']} before the fan held")
                return None
            return place


class SpikeShape(LoadTestShape):
    """Ramp to the peak within seconds, hold it, then a tail at a fifth of it."""

    peak = _env_int("SPIKE_PEAK", 500)
    ramp = _env_int("SPIKE_RAMP_SECONDS", 10)
    plateau = _env_int("SPIKE_PLATEAU_SECONDS", 40)
    tail = _env_int("SPIKE_TAIL_SECONDS", 20)

    def tick(self) -> tuple[int, float] | None:
        t = self.get_run_time()
        if t < self.ramp + self.plateau:
            return self.peak, max(1.0, self.peak / self.ramp)
        if t < self.ramp + self.plateau + self.tail:
            return max(1, self.peak // 5), float(self.peak)
        return None
