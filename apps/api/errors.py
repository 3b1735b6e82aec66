"""One error body for every 4xx/5xx: ``{"error": {"code", "message", "details"}}``.

Domain code raises :class:`ApiError` subclasses (values with a status and a stable code);
Litestar's own exceptions (body validation, unknown route, wrong method) go through the
same handler, so a client parses exactly one shape. A dependency that does not answer
(Redis/Valkey, MongoDB, NATS: a refused connection or a timeout, wherever on whichever
route it is raised) is a 503 with ``Retry-After``, never a 500. Other unexpected exceptions
become a generic 500 whose message reveals nothing (the traceback goes to the log only).
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import nats.errors
import pymongo.errors
import redis.exceptions
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_401_UNAUTHORIZED,
    HTTP_403_FORBIDDEN,
    HTTP_404_NOT_FOUND,
    HTTP_405_METHOD_NOT_ALLOWED,
    HTTP_409_CONFLICT,
    HTTP_429_TOO_MANY_REQUESTS,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_502_BAD_GATEWAY,
    HTTP_503_SERVICE_UNAVAILABLE,
)

log = logging.getLogger("api.errors")

_CODES = {
    HTTP_400_BAD_REQUEST: "invalid_request",
    HTTP_401_UNAUTHORIZED: "unauthorized",
    HTTP_403_FORBIDDEN: "forbidden",
    HTTP_404_NOT_FOUND: "not_found",
    HTTP_405_METHOD_NOT_ALLOWED: "method_not_allowed",
    HTTP_409_CONFLICT: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    HTTP_429_TOO_MANY_REQUESTS: "rate_limited",
}


class ApiError(Exception):
    """A failure the client can act on; carries its own status and stable error code."""

    status_code = HTTP_400_BAD_REQUEST
    code = "invalid_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}
        if code is not None:
            self.code = code


class BadRequest(ApiError):
    status_code = HTTP_400_BAD_REQUEST
    code = "invalid_request"


class Unauthorized(ApiError):
    status_code = HTTP_401_UNAUTHORIZED
    code = "unauthorized"

    def __init__(self, message: str = "authentication required", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kw)


class Forbidden(ApiError):
    status_code = HTTP_403_FORBIDDEN
    code = "forbidden"


class NotFound(ApiError):
    status_code = HTTP_404_NOT_FOUND
    code = "not_found"


class Conflict(ApiError):
    status_code = HTTP_409_CONFLICT
    code = "conflict"


class TooManyRequests(ApiError):
    status_code = HTTP_429_TOO_MANY_REQUESTS
    code = "rate_limited"


RETRY_AFTER_SECONDS = 5


class ServiceUnavailable(ApiError):
    """A dependency of ours (NATS, Redis, MongoDB) is not answering; retrying is safe."""

    status_code = HTTP_503_SERVICE_UNAVAILABLE
    code = "unavailable"

    def __init__(self, message: str, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": str(RETRY_AFTER_SECONDS)})
        super().__init__(message, **kw)


class BadGateway(ApiError):
    """The broker (an upstream we depend on) failed or is unreachable."""

    status_code = HTTP_502_BAD_GATEWAY
    code = "broker_unavailable"


class ErrorDetail(msgspec.Struct, kw_only=True):
    code: str  # stable, for programs: "validation_failed", "unavailable", ...
    message: str  # plain language, for people
    details: Any = None  # per code: the fields at fault, limits, ...


class ErrorBody(msgspec.Struct, kw_only=True):
    """The body of every 4xx and 5xx answer."""

    error: ErrorDetail


def error_body(code: str, message: str, details: Any = None) -> ErrorBody:
    return ErrorBody(error=ErrorDetail(code=code, message=message, details=details))


# What each client library raises when its server refuses, drops or does not answer.
_DEPENDENCY_FAILURES: dict[str, tuple[type[Exception], ...]] = {
    "the cache (Valkey)": (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError),
    "the database (MongoDB)": (pymongo.errors.ConnectionFailure,),
    "the message bus (NATS)": (
        nats.errors.ConnectionClosedError,
        nats.errors.ConnectionReconnectingError,
        nats.errors.NoServersError,
        nats.errors.NoRespondersError,
        nats.errors.TimeoutError,
    ),
    "a service the API depends on": (ConnectionError, TimeoutError),
}


def _dependency_down(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    which = next(name for name, kinds in _DEPENDENCY_FAILURES.items() if isinstance(exc, kinds))
    log.warning("%s is not answering: %r", which, exc)
    message = f"{which} is not answering; please try again in a few seconds"
    return _api_error(request, ServiceUnavailable(message))


def _api_error(_: Request[Any, Any, Any], exc: ApiError) -> Response[ErrorBody]:
    return Response(
        error_body(exc.code, exc.message, exc.details),
        status_code=exc.status_code,
        headers=exc.headers,
        media_type=MediaType.JSON,
    )


def _http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    status = exc.status_code
    if status >= HTTP_500_INTERNAL_SERVER_ERROR:
        log.error("server error %s: %s", status, exc.detail, exc_info=exc)
        return Response(
            error_body("internal_error", "internal server error"),
            status_code=status,
            media_type=MediaType.JSON,
        )
    details: Any = exc.extra if isinstance(exc, ValidationException) or exc.extra else None
    code = "validation_failed" if isinstance(exc, ValidationException) else None
    return Response(
        error_body(code or _CODES.get(status, "client_error"), str(exc.detail), details),
        status_code=status,
        headers=exc.headers,
        media_type=MediaType.JSON,
    )


def _unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    log.exception("unhandled error", exc_info=exc)
    return Response(
        error_body("internal_error", "internal server error"),
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
        media_type=MediaType.JSON,
    )


exception_handlers: dict[int | type[Exception], Any] = {
    **{kind: _dependency_down for kinds in _DEPENDENCY_FAILURES.values() for kind in kinds},
    ApiError: _api_error,
    HTTPException: _http_exception,
    Exception: _unexpected,
}
