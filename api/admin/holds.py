"""The active seat holds, read from Redis (they are not in the ledger), and the box
office's manual release. The release is a POST form; `same_origin.SameOrigin` refuses it
from another site."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from sqladmin import BaseView, expose
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from amphi import errors
from api.admin.money import dollars
from api.state import amphi_of
from engine.admin import ActiveHold, active_holds
from engine.holds import HoldEngine
from ledger.catalog import Catalog

log = logging.getLogger(__name__)


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _row(active: ActiveHold, names: dict[str, str]) -> dict[str, Any]:
    hold = active.hold
    return {
        "hold_id": hold.hold_id,
        "section": names.get(hold.section, hold.section),
        "event_date": hold.event_date.isoformat(),
        "seats": ", ".join(f"{s.row}{s.seat}" for s in active.seats) or "general admission",
        "quantity": hold.quantity,
        "price": dollars(hold.price_cents),
        "total": dollars(hold.total_cents),
        "owner": hold.owner or "guest",
        "client": hold.client,
        "created": _time(hold.created_ms),
        "expires": _time(hold.expires_ms),
    }


def _matches(row: dict[str, Any], day: str, section: str, search: str) -> bool:
    if day and row["event_date"] != day:
        return False
    if section and row["section"] != section:
        return False
    haystack = f'{row["hold_id"]} {row["owner"]} {row["client"]}'.lower()
    return not search or search.lower() in haystack


class SeatHoldsView(BaseView):
    name = "Seat holds"
    icon = "fa-solid fa-hourglass-half"
    api_app: Starlette  # set by `mount`

    # Listed first: the view's identity (and menu link) is this endpoint's.
    @expose("/seat-hold", methods=["GET"], identity="seat-hold")
    async def holds_page(self, request: Request) -> Response:
        state = amphi_of(self.api_app)
        catalog: Catalog = state.catalog
        names = {s.slug: s.name for s in catalog.sections.values()}
        rows = [_row(a, names) for a in await active_holds(state.redis)]
        day = request.query_params.get("event_date", "")
        section = request.query_params.get("section", "")
        search = request.query_params.get("search", "").strip()
        shown = [r for r in rows if _matches(r, day, section, search)]
        context = {
            "holds": shown,
            "total": len(rows),
            "days": sorted({r["event_date"] for r in rows}),
            "sections": sorted({r["section"] for r in rows}),
            "day": day,
            "section": section,
            "search": search,
            "released": request.query_params.get("released", ""),
            "refused": request.query_params.get("refused", ""),
        }
        return await self.templates.TemplateResponse(request, "seat_holds.html", context)

    @expose("/seat-hold/release", methods=["POST"], identity="seat-hold-release")
    async def release(self, request: Request) -> Response:
        hold_id = str((await request.form()).get("hold_id", ""))
        engine: HoldEngine = amphi_of(self.api_app).holds
        try:
            hold = await engine.release(hold_id, requester="", force=True)
        except (errors.HoldNotFound, errors.HoldNotActive) as refused:
            query = {"refused": refused.message}
        else:
            log.info("hold released by the box office",
                     extra={"hold_id": hold_id, "quantity": hold.quantity,
                            "section": hold.section, "event_date": str(hold.event_date)})
            query = {"released": hold_id}
        # 303: the browser follows with a GET, so reloading the page does not post again.
        url = f"{request.url_for('admin:view-seat-hold')}?{urlencode(query)}"
        return RedirectResponse(url, status_code=303)
