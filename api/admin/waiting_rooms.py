"""The waiting rooms in the box office: each room's state and counts, and the operator's
actions of `amphi queue` (runtime/waiting_room_cli.py): open a room or change its settings
live, pause, resume, close, void every admission token, end one fan's turn. The actions are
POST forms; `same_origin.SameOrigin` refuses them from another site.

The rooms live in Redis (engine/waiting_room.py, whose calls are synchronous, as the CLI's):
each page or action opens its own client in a thread. The box office acts a few times an
hour, so a client kept open for it would be one more thing to close."""

from __future__ import annotations

import logging
import os
from contextlib import closing
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import anyio.to_thread
from sqladmin import BaseView, expose
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from amphi import capacity, errors
from amphi.waiting_room import DEFAULT_TURN_SECONDS, RoomConfig, RoomState, changed_config
from api.state import amphi_of
from engine import waiting_room as rooms
from engine.transport.connection import sync_client

log = logging.getLogger(__name__)

ACTIONS = {"pause": "paused", "resume": "open", "close": "closed"}


def _local(at: datetime, tz: str) -> str:
    """As an <input type="datetime-local"> shows it: the venue's wall clock, to the minute."""
    return at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M")


def _row(day: date, config: RoomConfig, room: RoomState, tz: str) -> dict[str, Any]:
    return {
        "event_date": day.isoformat(),
        "state": room.state,
        "prequeue_at": _local(config.prequeue_at, tz),
        "on_sale_at": _local(config.on_sale_at, tz),
        "rate": config.rate_per_minute or "",
        "max_active": config.max_active or "",
        "turn_minutes": config.turn_seconds / 60,
        "prequeue": room.prequeue, "placed": room.last, "admitted": room.admitted,
        "waiting": room.waiting, "active": room.active, "turns_expired": room.turns_expired,
    }


def _optional_int(form: FormData, name: str, label: str) -> int | None:
    value = str(form.get(name, "")).strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.ValidationFailed(f"{label} must be a whole number.", field=name) from None


def _optional_time(form: FormData, name: str, label: str, tz: str) -> datetime | None:
    value = str(form.get(name, "")).strip()
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise errors.ValidationFailed(f"{label} is not a time.", field=name) from None
    return at if at.tzinfo else at.replace(tzinfo=ZoneInfo(tz))


def _back(request: Request, **note: str) -> Response:
    """To the rooms page with what happened: 303, so reloading it does not post again."""
    url = request.url_for("admin:view-waiting-room")
    return RedirectResponse(f"{url}?{urlencode(note)}", status_code=303)


class WaitingRoomsView(BaseView):
    name = "Waiting rooms"
    icon = "fa-solid fa-people-line"
    api_app: Starlette  # set by `mount`

    def _client(self) -> Any:
        return closing(sync_client(amphi_of(self.api_app).settings.redis_url))

    @expose("/waiting-room", methods=["GET"], identity="waiting-room")
    async def rooms_page(self, request: Request) -> Response:
        state = amphi_of(self.api_app)
        tz = state.settings.venue_timezone

        def read() -> list[dict[str, Any]]:
            with self._client() as client:
                shown = []
                for day in sorted(rooms.listed(client)):
                    config, room = rooms.config_of(client, day), rooms.room_state(client, day)
                    if config is not None and room is not None:  # closed a day ago: gone
                        shown.append(_row(day, config, room, tz))
                return shown

        context = {
            "rooms": await anyio.to_thread.run_sync(read),
            "dates": sorted({d.event_date.isoformat() for d in state.catalog.event_dates}),
            "timezone": tz,
            "default_turn_minutes": DEFAULT_TURN_SECONDS // 60,
            "done": request.query_params.get("done", ""),
            "refused": request.query_params.get("refused", ""),
        }
        return await self.templates.TemplateResponse(request, "waiting_rooms.html", context)

    @expose("/waiting-room/open", methods=["POST"], identity="waiting-room-open")
    async def open_room(self, request: Request) -> Response:
        """Open a room, or change an open room's settings live: empty fields keep them."""
        settings = amphi_of(self.api_app).settings
        tz = settings.venue_timezone
        form = await request.form()
        try:
            day = date.fromisoformat(str(form.get("event_date", "")))
        except ValueError:
            return _back(request, refused="Choose an event date.")

        def apply() -> str:
            rate = _optional_int(form, "rate", "The rate")
            cap = _optional_int(form, "max_active", "The cap on shoppers")
            turn = _optional_int(form, "turn_minutes", "The turn")
            with self._client() as client:
                current = rooms.config_of(client, day)
                if current is None and rate is None and cap is None:
                    # as `amphi queue open`: the rate this machine carries for 60,000 fans
                    rate = capacity.default_rate(
                        capacity.Machine.single(os.cpu_count() or 1), 60_000)
                config = changed_config(
                    day, current, now=datetime.now(ZoneInfo(tz)),
                    prequeue_at=_optional_time(form, "prequeue_at", "The pre-queue", tz),
                    on_sale_at=_optional_time(form, "on_sale_at", "The on-sale start", tz),
                    rate_per_minute=rate, max_active=cap,
                    turn_seconds=None if turn is None else turn * 60)
                rooms.configure(client, config)
            log.info("waiting room set in the box office", extra={
                "event_date": day.isoformat(), "rate_per_minute": config.rate_per_minute,
                "max_active": config.max_active, "turn_seconds": config.turn_seconds,
                "on_sale_at": config.on_sale_at.isoformat(), "new": current is None})
            return (f"Waiting room for {day} {'updated' if current else 'open'}: "
                    f"{config.rate_per_minute or 'any'} fans a minute, at most "
                    f"{config.max_active or 'any'} shopping.")

        try:
            return _back(request, done=await anyio.to_thread.run_sync(apply))
        except errors.DomainError as refused:
            return _back(request, refused=refused.message)

    @expose("/waiting-room/act", methods=["POST"], identity="waiting-room-act")
    async def act(self, request: Request) -> Response:
        """pause, resume, close, revoke (every token), end-turn (one position)."""
        form = await request.form()
        action = str(form.get("action", ""))
        try:
            day = date.fromisoformat(str(form.get("event_date", "")))
            position = _optional_int(form, "position", "The position")
        except (ValueError, errors.DomainError):
            return _back(request, refused="Choose a room, and a position by its number.")
        if action not in (*ACTIONS, "revoke", "end-turn"):
            return _back(request, refused=f"Unknown action {action!r}.")

        def apply() -> dict[str, str]:
            with self._client() as client:
                if not rooms.exists(client, day):
                    return {"refused": f"No waiting room for {day}."}
                if action in ACTIONS:
                    rooms.set_state(client, day, ACTIONS[action])
                    done = f"Waiting room for {day}: {ACTIONS[action]}."
                elif action == "revoke":
                    epoch = rooms.revoke_all(client, day)
                    done = f"Waiting room for {day}: every admission token void (epoch {epoch})."
                elif position is None:
                    return {"refused": "Give the position whose turn to end."}
                elif rooms.end_turn(client, day, position):
                    done = f"Waiting room for {day}: the turn of position {position} ended."
                else:
                    return {"refused": f"Position {position} of {day} has no turn running."}
            log.info("waiting room changed in the box office",
                     extra={"event_date": day.isoformat(), "action": action,
                            "position": position})
            return {"done": done}

        return _back(request, **await anyio.to_thread.run_sync(apply))
