"""Domain errors to HTTP, once: the envelope {"success": false, "error": {code, message}}."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from redis import exceptions as redis_errors
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.types import ExceptionHandler

from amphi import errors, metrics
from api.shapes import FastJSONResponse
from api.state import amphi

log = logging.getLogger(__name__)

STATUS: dict[type[errors.DomainError], int] = {
    errors.InvalidRequest: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.NotOnSale: 409,
    errors.QueueNotOpen: 409,
    errors.SoldOut: 409,
    errors.NoAdjacentSeats: 409,
    errors.AccessibleUnavailable: 409,
    errors.SeatsUnavailable: 409,
    errors.BlockConflict: 409,
    errors.CheckoutConflict: 409,
    errors.TransferRefused: 409,
    errors.PaymentNotCompleted: 409,
    errors.EventDatePast: 410,
    errors.HoldNotActive: 410,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.ValidationFailed: 422,
    errors.IdempotencyMismatch: 422,
    errors.RateLimited: 429,
    errors.TooManyHolds: 429,
    errors.ServiceUnavailable: 503,
}

UNREACHABLE = (redis_errors.ConnectionError, redis_errors.TimeoutError,
               redis_errors.ClusterDownError)

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 400: "invalid_request"}


def status_of(exc: errors.DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def envelope(code: str, message: str, status: int, details: dict | None = None,
             headers: Mapping[str, str] | None = None) -> JSONResponse:
    error: dict = {"code": code, "message": message}
    if details:
        error["details"] = details
    return FastJSONResponse({"success": False, "error": error}, status_code=status,
                            headers=headers)


async def domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.DomainError)
    status = status_of(exc)
    headers = None
    retry_ms = exc.details.get("retry_after_ms")
    if isinstance(retry_ms, int):
        headers = {"Retry-After": str(max(1, -(-retry_ms // 1000)))}
    log.info("request refused", extra={"code": exc.code, "status": status})
    return envelope(exc.code, exc.message, status, exc.details or None, headers)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return envelope(code, str(exc.detail), exc.status_code, headers=exc.headers)


async def redis_error(request: Request, exc: Exception) -> JSONResponse:
    """Redis unreachable: nothing was held or sold, so the fan may retry (503). Any other
    Redis error is a bug of ours (500)."""
    metrics.labelled(metrics.REDIS_ERRORS, type(exc).__name__).inc()
    if not isinstance(exc, UNREACHABLE):
        return await unexpected_error(request, exc)
    amphi(request).outages.redis.failed(exc)  # a line when it goes and one when it is back
    return envelope("service_unavailable", "Seat selection is unavailable; please retry shortly.",
                    503, headers={"Retry-After": "1"})


async def database_error(request: Request, exc: Exception) -> JSONResponse:
    metrics.DATABASE_ERRORS.inc()
    amphi(request).outages.database.failed(exc)
    return envelope("service_unavailable", "The service is unavailable; please retry shortly.",
                    503, headers={"Retry-After": "2"})


async def client_gone(request: Request, exc: Exception) -> JSONResponse:
    """The client closed the connection before its request was read: not our error. 499,
    as nginx logs it; nobody reads the answer."""
    log.info("client disconnected")
    return envelope("client_closed_request", "The client closed the request.", 499)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # with its traceback: a bug; repeats are held back by logs.RepeatLimit
    log.exception("unhandled error")
    return envelope("internal_error", "Something went wrong on our side; please retry.", 500)


HANDLERS: dict[type[Exception] | int, ExceptionHandler] = {
    errors.DomainError: domain_error,
    HTTPException: http_error,
    redis_errors.RedisError: redis_error,
    OperationalError: database_error,
    PoolTimeout: database_error,  # every pooled connection busy: as good as down
    ClientDisconnect: client_gone,
    Exception: unexpected_error,
}
