"""Request parsing: size-capped JSON bodies and typed fields, with clear errors."""

from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Any

import orjson
from starlette.requests import Request

from amphi import errors
from api.state import amphi

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SMALL_INT = re.compile(r"[0-9]{1,6}")


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused (413) as soon as it is known to exceed `limit` bytes: from its
    Content-Length, or while it is read."""
    declared = request.headers.get("content-length")
    if declared is not None and (not _SMALL_INT.fullmatch(declared) or int(declared) > limit):
        raise errors.PayloadTooLarge(f"The request body may not exceed {limit} bytes.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.PayloadTooLarge(f"The request body may not exceed {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request, *, limit: int | None = None) -> dict[str, Any]:
    """The request's JSON object. Only with Content-Type application/json: a browser sends a
    text/plain or form body cross-site without asking (no CORS preflight), and a JSON
    endpoint that took one could be driven by any web page its visitors open."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise errors.UnsupportedMediaType()
    raw = await read_body(request, limit or amphi(request).settings.max_body_bytes)
    if not raw.strip():
        raise errors.InvalidRequest("A JSON body is required.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise errors.InvalidRequest("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise errors.InvalidRequest("The request body must be a JSON object.")
    return body


def _required(body: dict[str, Any], name: str) -> Any:
    if body.get(name) is None:
        raise errors.InvalidRequest(f"'{name}' is required.", field=name)
    return body[name]


def uuid_value(raw: Any, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise errors.ValidationFailed(f"'{name}' must be a UUID.", field=name) from None


def date_value(raw: Any, name: str) -> date:
    if not isinstance(raw, str) or not _ISO_DATE.fullmatch(raw):
        raise errors.ValidationFailed(f"'{name}' must be a date as YYYY-MM-DD.", field=name)
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise errors.ValidationFailed(
            f"'{name}' must be a date as YYYY-MM-DD.", field=name
        ) from None


def field_uuid(body: dict[str, Any], name: str) -> uuid.UUID:
    return uuid_value(_required(body, name), name)


def field_date(body: dict[str, Any], name: str) -> date:
    return date_value(_required(body, name), name)


def field_int(body: dict[str, Any], name: str, *, low: int, high: int) -> int:
    raw = _required(body, name)
    if isinstance(raw, bool) or not isinstance(raw, int):
        if isinstance(raw, str) and _SMALL_INT.fullmatch(raw.strip()):
            raw = int(raw.strip())
        else:
            raise errors.ValidationFailed(f"'{name}' must be a whole number.", field=name)
    if not low <= raw <= high:
        raise errors.ValidationFailed(
            f"'{name}' must be between {low} and {high}.", field=name
        )
    return raw


def field_text(body: dict[str, Any], name: str, *, required: bool, limit: int) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip() or len(value) > limit or "\x00" in value:
        raise errors.ValidationFailed(f"'{name}' must be text of 1-{limit} characters.",
                                      field=name)
    return value.strip()


def field_bool(body: dict[str, Any], name: str, default: bool = False) -> bool:
    raw = body.get(name, default)
    if not isinstance(raw, bool):
        raise errors.ValidationFailed(f"'{name}' must be true or false.", field=name)
    return raw


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    key = key.strip()
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise errors.ValidationFailed("Idempotency-Key must be 1-255 printable characters.")
    return key


def field_seats(body: dict[str, Any], name: str, *, most: int) -> list[tuple[str, int]] | None:
    """A list of 1..`most` distinct {"row": "C", "seat": 12}, as (row, seat); None when the
    body has none."""
    raw = body.get(name)
    if raw is None:
        return None
    wrong = errors.ValidationFailed(
        f"'{name}' must be a list of 1 to {most} distinct seats, each "
        '{"row": "C", "seat": 12}.', field=name)
    if not isinstance(raw, list) or not 1 <= len(raw) <= most:
        raise wrong
    seats = []
    for item in raw:
        if (not isinstance(item, dict) or set(item) != {"row", "seat"}
                or not isinstance(item["row"], str) or not 1 <= len(item["row"]) <= 8
                or isinstance(item["seat"], bool) or not isinstance(item["seat"], int)):
            raise wrong
        seats.append((item["row"], item["seat"]))
    if len(set(seats)) != len(seats):
        raise wrong
    return seats
