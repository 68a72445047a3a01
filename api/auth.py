"""Bearer JWT (HS256, JWT_SECRET): claims sub, email, exp, optional is_staff."""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from starlette.requests import Request

from amphi import errors
from api.state import amphi


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    email: str
    is_staff: bool = False


# Verified tokens, so that a fan's further requests (hold, status polls, release, checkout)
# skip PyJWT's decode: about 100 us of pure Python a call, the largest part of a hold's
# CPU time. Only valid tokens are kept, by their exact text; expiry is checked on every use.
# Sized for an on-sale crowd (40,000-60,000 fans), so each fan's token is decoded once per
# API process: about 40 MB a process when full (640 bytes a token, measured).
TOKEN_CACHE_SIZE = 65_536


@functools.lru_cache(maxsize=TOKEN_CACHE_SIZE)
def _verified(token: str, secret: str) -> tuple[Principal, float]:
    claims = jwt.decode(
        token, secret, algorithms=["HS256"], options={"require": ["sub", "exp"]}
    )
    principal = Principal(
        str(claims["sub"]), str(claims.get("email", "")), bool(claims.get("is_staff"))
    )
    return principal, float(claims["exp"])


def decode_token(token: str, secret: str) -> Principal:
    try:
        principal, expires = _verified(token, secret)
    except jwt.ExpiredSignatureError:
        raise errors.Unauthorized("The token has expired; please sign in again.") from None
    except jwt.InvalidTokenError:
        raise errors.Unauthorized("The token is invalid.") from None
    if expires <= time.time():  # PyJWT's own rule (no leeway), for a token cached earlier
        raise errors.Unauthorized("The token has expired; please sign in again.")
    return principal


def mint_token(secret: str, *, user_id: str, email: str, is_staff: bool = False,
               ttl: timedelta = timedelta(hours=12)) -> str:
    claims = {"sub": user_id, "email": email, "is_staff": is_staff,
              "exp": datetime.now(UTC) + ttl}
    return jwt.encode(claims, secret, algorithm="HS256")


def optional_principal(request: Request) -> Principal | None:
    """The caller, if a Bearer token came; a bad token is an error, not a guest."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.Unauthorized("Use 'Authorization: Bearer <token>'.")
    return decode_token(token.strip(), amphi(request).settings.jwt_secret)


def required_principal(request: Request) -> Principal:
    principal = optional_principal(request)
    if principal is None:
        raise errors.Unauthorized()
    return principal


def client_identity(request: Request, principal: Principal | None) -> str:
    """Who the rate limit and the active-hold cap count: the user, else the client address.
    Behind a load balancer in FORWARDED_ALLOW_IPS, request.client is the address it
    forwarded (api/forwarded.py)."""
    if principal is not None:
        return f"user:{principal.user_id}"
    host = request.client.host if request.client else "unknown"
    return f"guest:{host}"


_GUEST_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


def holder(request: Request, principal: Principal | None) -> str | None:
    """Whose holds "my holds" lists: the signed-in user's, else those a guest's app made
    with its `X-Guest-Id` (a random id it keeps; the client address is no one's own: fans
    behind one carrier's NAT share it). None for a guest who sent none."""
    guest = request.headers.get("x-guest-id")
    if guest is not None and not _GUEST_ID.fullmatch(guest):
        raise errors.ValidationFailed(
            "X-Guest-Id must be 16-64 letters, digits, '-' or '_' (a random id the app keeps).",
            field="X-Guest-Id")
    if principal is not None:
        return f"user:{principal.user_id}"
    return None if guest is None else f"guest:{guest}"
