"""The pure gate rules (`amphi.access.judge`) over every combination of ticket kind, gate,
ticket date against the venue's today, ticket status, an earlier admission at the same gate
and the gate's re-entry policy, against an expectation written from the spec; and the
venue's "today" (`amphi.venue_time.venue_today`) around midnight in Los Angeles."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from amphi.access import Admission, Gate, TicketFacts, judge
from amphi.venue_time import venue_today
from tests.scan._support import LA, UTC

TODAY = date(2027, 6, 19)
KINDS = ("amphitheater", "festival_day")
GATES = (Gate.AMPHITHEATER, Gate.FESTIVAL)
WHEN = {"before": TODAY - timedelta(days=1), "on": TODAY, "after": TODAY + timedelta(days=1)}
STATUSES = ("issued", "void", "refunded")
EARLIER = ("none", "same_gate")
REENTRY = (False, True)
FIRST_SCAN = Admission(datetime(2027, 6, 19, 18, 5, tzinfo=LA), "north-gate-3")


@dataclass(frozen=True)
class Expected:
    can_enter: bool
    refusals: frozenset[str]  # every rule the scan breaks; the decision names one of them
    festival_access_granted: bool


def expected(kind: str, gate: Gate, when: str, status: str, earlier: str,
             reentry: bool) -> Expected:
    """The spec, rule by rule (independent of amphi.access)."""
    broken = set()
    if status == "void":
        broken.add("voided")
    if status == "refunded":
        broken.add("refunded")
    # a comp festival pass never opens the amphitheatre gate
    if kind == "festival_day" and gate is Gate.AMPHITHEATER:
        broken.add("wrong_gate")
    # both kinds open their gates on their own date only
    if when != "on":
        broken.add("wrong_date")
    # a second admission at the same gate the same day, unless the gate allows re-entry
    if earlier == "same_gate" and not reentry:
        broken.add("already_scanned")
    can_enter = not broken
    # an amphitheatre ticket entering the festival gate is festival access, granted only
    # when the holder actually enters
    festival = can_enter and kind == "amphitheater" and gate is Gate.FESTIVAL
    return Expected(can_enter, frozenset(broken), festival)


CASES = list(itertools.product(KINDS, GATES, WHEN, STATUSES, EARLIER, REENTRY))


def test_the_table_covers_every_combination() -> None:
    assert len(CASES) == 2 * 2 * 3 * 3 * 2 * 2 == 144
    assert len(set(CASES)) == len(CASES)
    # the table is not degenerate: each outcome occurs
    outcomes = [expected(*c) for c in CASES]
    # three (kind, gate) pairs can enter, on the date, issued, unless scanned without re-entry
    assert sum(o.can_enter for o in outcomes) == 3 * 3
    assert {r for o in outcomes for r in o.refusals} == {
        "voided", "refunded", "wrong_gate", "wrong_date", "already_scanned"}


@pytest.mark.parametrize(("kind", "gate", "when", "status", "earlier", "reentry"), CASES,
                         ids=["-".join(map(str, c)) for c in CASES])
def test_judge_follows_the_spec(kind: str, gate: Gate, when: str, status: str, earlier: str,
                                reentry: bool) -> None:
    ticket = TicketFacts(kind, status, WHEN[when])
    prior = FIRST_SCAN if earlier == "same_gate" else None
    want = expected(kind, gate, when, status, earlier, reentry)

    decision = judge(ticket, gate, TODAY, prior, reentry=reentry)

    assert decision.can_enter is want.can_enter, decision
    if want.can_enter:
        assert decision.code == "admitted", decision
    else:
        assert decision.code in want.refusals, (decision, want.refusals)
    assert decision.festival_access_granted is want.festival_access_granted, decision
    assert decision.reason.strip(), decision
    assert_reason_explains(decision.code, decision.reason, ticket, gate)


def assert_reason_explains(code: str, reason: str, ticket: TicketFacts, gate: Gate) -> None:
    """What the gate attendant reads says why, in words."""
    text = reason.lower()
    if code == "already_scanned":
        assert "6:05 pm" in text, reason  # when it was first scanned (venue time)
        assert FIRST_SCAN.device_id in reason, reason  # on which device
        assert gate.value in text, reason  # at which gate
    elif code == "wrong_date":
        assert ticket.event_date.strftime("%B %-d, %Y") in reason, reason  # its date
        assert "not today" in text, reason
    elif code == "voided":
        assert "void" in text, reason
    elif code == "refunded":
        assert "refund" in text, reason
    elif code == "wrong_gate":
        assert "festival" in text and "amphitheat" in text, reason
    elif code == "admitted" and ticket.kind == "amphitheater" and gate is Gate.FESTIVAL:
        assert "festival" in text, reason


def test_a_refused_scan_never_grants_festival_access() -> None:
    """A second festival-gate scan of an amphitheatre ticket is refused; the decision (and
    the scan log's festival_access_granted column, which copies it) must not say festival
    access was granted. amphi/access.py passes `festival_access` into the already_scanned
    refusal."""
    ticket = TicketFacts("amphitheater", "issued", TODAY)
    decision = judge(ticket, Gate.FESTIVAL, TODAY, FIRST_SCAN, reentry=False)
    assert (decision.can_enter, decision.code) == (False, "already_scanned")
    assert decision.festival_access_granted is False, decision


@pytest.mark.parametrize("gate", GATES)
@pytest.mark.parametrize("reentry", REENTRY)
def test_an_unknown_ticket_is_refused_with_a_reason(gate: Gate, reentry: bool) -> None:
    decision = judge(None, gate, TODAY, None, reentry=reentry)
    assert (decision.can_enter, decision.code, decision.festival_access_granted) == (
        False, "unknown_ticket", False)
    assert "not found" in decision.reason.lower(), decision.reason


@pytest.mark.parametrize(("when", "word"), [("before", "was"), ("after", "is")])
def test_the_wrong_date_reason_names_the_day_of_the_ticket(when: str, word: str) -> None:
    ticket = TicketFacts("amphitheater", "issued", WHEN[when])
    reason = judge(ticket, Gate.AMPHITHEATER, TODAY).reason
    day = WHEN[when]
    assert f"{day.strftime('%A')}, {day.strftime('%B')} {day.day}, {day.year}" in reason
    assert f"This ticket {word} for" in reason, reason


@pytest.mark.parametrize(("at", "shown"), [
    (datetime(2027, 6, 19, 0, 30, tzinfo=LA), "12:30 AM"),
    (datetime(2027, 6, 19, 9, 7, tzinfo=LA), "9:07 AM"),
    (datetime(2027, 6, 19, 12, 0, tzinfo=LA), "12:00 PM"),
    (datetime(2027, 6, 19, 23, 59, tzinfo=LA), "11:59 PM"),
])
def test_the_already_scanned_reason_says_when_and_where(at: datetime, shown: str) -> None:
    ticket = TicketFacts("festival_day", "issued", TODAY)
    decision = judge(ticket, Gate.FESTIVAL, TODAY, Admission(at, "south-7"))
    assert decision.code == "already_scanned"
    assert shown in decision.reason and "south-7" in decision.reason, decision.reason
    assert "festival gate" in decision.reason, decision.reason


def test_re_entry_lets_the_second_scan_in_with_the_same_festival_access() -> None:
    ticket = TicketFacts("amphitheater", "issued", TODAY)
    again = judge(ticket, Gate.FESTIVAL, TODAY, FIRST_SCAN, reentry=True)
    assert (again.can_enter, again.code, again.festival_access_granted) == (
        True, "admitted", True)


# -- the venue's today ------------------------------------------------------------------------
MIDNIGHT_CASES = [
    # (instant, the venue's date); Pacific Daylight Time in June is UTC-7
    (datetime(2027, 6, 20, 5, 0, tzinfo=UTC), date(2027, 6, 19)),  # 22:00 on the 19th in LA
    (datetime(2027, 6, 20, 6, 59, 59, tzinfo=UTC), date(2027, 6, 19)),  # 23:59:59
    (datetime(2027, 6, 20, 7, 0, tzinfo=UTC), date(2027, 6, 20)),  # midnight in LA
    (datetime(2027, 6, 20, 7, 30, tzinfo=UTC), date(2027, 6, 20)),  # 00:30 in LA
    (datetime(2027, 6, 19, 23, 59, tzinfo=UTC), date(2027, 6, 19)),  # 16:59 in LA
    (datetime(2027, 6, 20, 0, 1, tzinfo=UTC), date(2027, 6, 19)),  # UTC's 20th, LA's 19th
    # Pacific Standard Time in winter is UTC-8
    (datetime(2027, 1, 1, 7, 59, tzinfo=UTC), date(2026, 12, 31)),
    (datetime(2027, 1, 1, 8, 0, tzinfo=UTC), date(2027, 1, 1)),
    # the same instants, given in other zones
    (datetime(2027, 6, 20, 14, 0, tzinfo=ZoneInfo("Asia/Tokyo")), date(2027, 6, 19)),
    (datetime(2027, 6, 20, 0, 30, tzinfo=LA), date(2027, 6, 20)),
    (datetime(2027, 6, 19, 23, 30, tzinfo=ZoneInfo("America/New_York")), date(2027, 6, 19)),
]


@pytest.mark.parametrize(("now", "day"), MIDNIGHT_CASES, ids=[str(c[0]) for c in MIDNIGHT_CASES])
def test_venue_today_is_the_los_angeles_date(now: datetime, day: date) -> None:
    assert venue_today("America/Los_Angeles", now) == day


@pytest.fixture
def server_in_kiribati(monkeypatch: pytest.MonkeyPatch):
    """The process' local zone far from the venue (UTC+14), as a server might be set."""
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("server_in_kiribati")
def test_venue_today_ignores_the_servers_zone() -> None:
    assert time.localtime().tm_gmtoff == 14 * 3600  # the zone did change
    for now, day in MIDNIGHT_CASES:
        assert venue_today("America/Los_Angeles", now) == day, now
    before = datetime.now(LA).date()
    today = venue_today("America/Los_Angeles")  # the real clock
    assert today in {before, datetime.now(LA).date()}


def test_venue_today_refuses_a_naive_now() -> None:
    with pytest.raises(ValueError):
        venue_today("America/Los_Angeles", datetime(2027, 6, 20, 0, 30))
