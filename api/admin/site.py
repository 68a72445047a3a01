"""The admin site: sqladmin mounted at /admin on the API app, behind the box office login."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqladmin import Admin
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware

from amphi.settings import Settings
from api.admin.auth import AdminAuth
from api.admin.holds import SeatHoldsView
from api.admin.same_origin import SameOrigin
from api.admin.views import MODEL_VIEWS
from api.admin.waiting_rooms import WaitingRoomsView
from api.state import amphi_of

BASE_URL = "/admin"
TEMPLATES = Path(__file__).resolve().parent / "templates"


class LifespanSessions(async_sessionmaker[AsyncSession]):
    """Sessions on the API's own database engine, which the lifespan builds after the
    admin is mounted (sqladmin wants a session maker when it is constructed)."""

    def __init__(self, app: Starlette) -> None:
        super().__init__(class_=AsyncSession, expire_on_commit=False)
        self._app = app

    def __call__(self, **local_kw: Any) -> AsyncSession:
        local_kw.setdefault("bind", amphi_of(self._app).sessions.kw["bind"])
        return super().__call__(**local_kw)


def mount(app: Starlette, settings: Settings) -> Admin:
    admin = Admin(
        app,
        session_maker=LifespanSessions(app),
        base_url=BASE_URL,
        title="Pacific Amphitheatre box office",
        templates_dir=str(TEMPLATES),
        authentication_backend=AdminAuth(settings, app, path=BASE_URL),
        middlewares=[Middleware(SameOrigin)],
    )
    for view in [*MODEL_VIEWS, SeatHoldsView, WaitingRoomsView]:
        admin.add_view(view)
    for instance in admin.views:
        # The views read the API's clients (api/state.py), not the admin sub-app's.
        instance.api_app = app  # type: ignore[union-attr]
    return admin
