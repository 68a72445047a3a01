"""The reference fan app (`/`) and the stewards' gate page (`/gate/`): static files of
api/web/, served by the API process on the public API alone, and the configuration they
read (`GET /api/config/`). No build step: plain HTML, CSS and JavaScript (docs/web.md)."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from api import shapes
from api.state import amphi

WEB = Path(__file__).resolve().parent / "web"
ASSETS = "/app"
PAGES = {"/": "index.html", "/gate/": "gate.html"}


def is_web_path(path: str) -> bool:
    """The app's pages and files: what gets the web pages' security policy."""
    return path in PAGES or path.startswith(ASSETS + "/")


async def config(request: Request) -> JSONResponse:
    """What the fan app needs to know of this deployment; no secret in it."""
    settings = amphi(request).settings
    return shapes.ok({
        "demo_mode": settings.demo_mode,
        "stripe_publishable_key": settings.stripe_publishable_key,
        "hold_ttl_seconds": settings.hold_ttl_seconds,
    })


def _page(path: str, name: str) -> Route:
    async def page(request: Request) -> FileResponse:
        # no-cache: revalidated (ETag) at each visit, so a new deployment's page is seen
        return FileResponse(WEB / name, headers={"Cache-Control": "no-cache"})
    return Route(path, page, methods=["GET"], name=f"web:{name}")


routes: list[BaseRoute] = [
    Route("/api/config/", config, methods=["GET"]),
    *(_page(path, name) for path, name in PAGES.items()),
    Mount(ASSETS, StaticFiles(directory=WEB), name="web"),
]
