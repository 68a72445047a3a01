"""The API's OpenAPI 3.1 document, served as JSON at /api/openapi.json.

It is written by hand in api/openapi.yaml, beside the handlers it describes, rather than
generated from them: the contract (the seed document's shapes) came first and the handlers
parse bodies by hand for speed, so there is nothing to generate it from. Two tests keep it
true: tests/test_openapi_document.py checks that it names exactly the app's routes, and
tests/api/test_openapi.py fuzzes a live server with Schemathesis against it (no 5xx, every
answer as documented)."""

from __future__ import annotations

import functools
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson
import yaml
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

PATH = "/api/openapi.json"
SOURCE = Path(__file__).with_name("openapi.yaml")


@functools.cache
def document() -> dict[str, Any]:
    """The document, with the installed package's version."""
    doc: dict[str, Any] = yaml.safe_load(SOURCE.read_text())
    doc["info"]["version"] = metadata.version("amphi")
    return doc


@functools.cache
def _rendered() -> bytes:
    return orjson.dumps(document())


async def openapi_json(request: Request) -> Response:
    return Response(_rendered(), media_type="application/json",
                    headers={"Cache-Control": "public, max-age=300"})


routes = [Route(PATH, openapi_json, methods=["GET"])]
