"""The waiting room's rules without servers (amphi/waiting_room.py): a fan's place and wait,
and the two signed tokens."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from amphi import errors
from amphi.waiting_room import (
    DEFAULT_TURN_SECONDS,
    Admission,
    QueueTicket,
    RoomConfig,
    RoomState,
    Tokens,
    changed_config,
    place_of,
)

DAY = date(2027, 6, 19)
ROOM = RoomState(state="open", admitted=100, last=5_000, active=40, epoch=1,
                 on_sale_ms=1_000_000, now_ms=1_000_000, rate_per_minute=600, max_active=0,
                 turn_seconds=900, prequeue=4_000, turns_expired=0)


def test_a_place_and_its_wait() -> None:
    assert place_of(100, ROOM).state == "admitted"
    waiting = place_of(701, ROOM)  # 600 ahead at 10 a second: a minute
    assert (waiting.state, waiting.ahead, waiting.estimated_wait_seconds) == ("waiting", 600, 61)
    assert waiting.poll_after_seconds == 6
    assert place_of(4_000, ROOM).poll_after_seconds == 30  # far back: rarely
    assert place_of(701, replace(ROOM, state="paused")).state == "paused"
    assert place_of(701, replace(ROOM, state="closed")).state == "closed"
    before = place_of(None, replace(ROOM, now_ms=ROOM.on_sale_ms - 60_000))
    assert (before.state, before.position, before.estimated_wait_seconds) == (
        "pre_queue", None, 60)
    # as the middle of the 4,000-fan pre-queue would: (60 s to the start + 200 s) / 10
    assert before.poll_after_seconds == 26


def test_a_full_cap_sets_the_pace() -> None:
    capped = replace(ROOM, rate_per_minute=600, max_active=40, active=40)
    assert place_of(181, capped).estimated_wait_seconds == 3 * 900  # 80 ahead: 3 turns
    free = replace(capped, active=10)
    assert place_of(181, free).estimated_wait_seconds == 9  # the rate, while slots are free


def test_tokens_are_bound_and_cannot_pass_for_each_other() -> None:
    tokens = Tokens("secret")
    ticket = QueueTicket(DAY, "user:fan|with|bars", 12, 1_000)
    text = tokens.ticket(ticket)
    assert tokens.read_ticket(text) == ticket
    admission = Admission(DAY, "guest:10.0.0.1", 12, 3, 2_000_000)
    token = tokens.admission(admission)
    assert tokens.read_admission(token, now_ms=1_999_999) == admission
    with pytest.raises(errors.AdmissionRequired):
        tokens.read_admission(token, now_ms=2_000_000)  # expired with the turn
    with pytest.raises(errors.AdmissionRequired):
        tokens.read_admission(text, now_ms=0)  # a queue ticket is no admission
    with pytest.raises(errors.ValidationFailed):
        tokens.read_ticket(token)
    with pytest.raises(errors.AdmissionRequired):
        Tokens("another secret").read_admission(token, now_ms=0)
    payload, signature = token.split(".")
    with pytest.raises(errors.AdmissionRequired):
        tokens.read_admission(payload[:-2] + "AA." + signature, now_ms=0)  # altered


def test_changed_settings_keep_what_is_not_given() -> None:
    day, now = date(2027, 6, 19), datetime(2027, 6, 1, 9, 0, tzinfo=UTC)
    start = now + timedelta(hours=1)
    with pytest.raises(errors.ValidationFailed, match="on-sale start"):
        changed_config(day, None, now=now, rate_per_minute=600)
    new = changed_config(day, None, now=now, on_sale_at=start, max_active=100)
    assert new == RoomConfig(day, now, start, 0, 100, DEFAULT_TURN_SECONDS)
    late = changed_config(day, None, now=start + timedelta(hours=1), on_sale_at=start,
                          rate_per_minute=60)
    assert late.prequeue_at == start  # opened after its start: no pre-queue
    live = changed_config(day, new, now=start, rate_per_minute=1200, turn_seconds=300)
    assert live == RoomConfig(day, now, start, 1200, 100, 300)
    with pytest.raises(errors.ValidationFailed, match="rate, a cap"):
        changed_config(day, new, now=now, max_active=0)
