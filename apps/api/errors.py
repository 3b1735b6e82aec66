"""One error body for every 4xx/5xx: ``{"error": {"code", "message", "details"}}``.

Domain code raises :class:`ApiError` subclasses (values with a status and a stable code);
Litestar's own exceptions (body validation, unknown route, wrong method) go through the
same handler, so a client parses exactly one shape. A body that fails validation is a
400 with ``code: "validation_failed"`` whose ``message`` speaks of the field in words
("Enter a valid e-mail address", "Stake must be a positive amount, e.g. 10.00") and whose
``details`` hold ``{key, message}`` per field (``key`` the field's dotted path, for
programs and forms): :func:`plain_validation` turns msgspec's wording into those words.

A dependency that does not answer
(Redis/Valkey, MongoDB, NATS: a refused connection or a timeout, wherever on whichever
route it is raised) is a 503 with ``Retry-After``, never a 500. Other unexpected exceptions
become a generic 500 whose message reveals nothing (the traceback goes to the log only).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
import msgspec.inspect as mi
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


# How people call the fields of the request bodies; others are their name in words.
FIELD_LABELS = {
    "email": "E-mail address",
    "password": "Password",
    "display_name": "Display name",
    "account_type": "Account type",
    "refresh_token": "Refresh token",
    "kind": "Broker",
    "label": "Label",
    "currency": "Currency",
    "balance_type": "Balance",
    "credentials": "Credentials",
    "token": "Token",
    "login": "Login e-mail",
    "broker_account_id": "Broker account",
    "stake_mode": "Stake mode",
    "stake": "Stake",
    "max_stake": "Maximum stake",
    "max_trades_per_day": "Maximum trades per day",
    "daily_loss_limit": "Daily loss limit",
    "balance_floor": "Balance floor",
    "max_drawdown_percent": "Maximum drawdown",
    "round_up_to_min_stake": "Round up to the minimum stake",
    "directions": "Directions",
    "reverse": "Reverse",
    "assets": "Assets",
    "asset": "Asset",
    "paused": "Paused",
    "price": "Price",
    "period_days": "Period (days)",
    "plan": "Plan",
    "name": "Name",
    "description": "Description",
    "channel_id": "Channel",
    "direction": "Direction",
    "expiry_seconds": "Expiry",
    "expiry_tolerance_seconds": "Expiry tolerance",
    "client_id": "Client id",
    "plan_id": "Plan",
}
# Format rules (msgspec patterns) said as what to enter, by field.
_FORMATS = {
    "email": "Enter a valid e-mail address",
    "login": "Enter a valid e-mail address",
    "currency": "Currency must be a currency code such as USD",
    "token": "Token may hold only letters, digits, _ and - (at most 128)",
    "asset": "Asset must be a symbol of letters, digits and _ (at most 32), e.g. R_100",
    "assets": "Each asset must be a symbol of letters, digits and _ (at most 32), e.g. R_100",
}
_TYPES = {
    "str": "text",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "object": "an object",
    "array": "a list",
    "null": "empty",
}
_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_IDENTIFIER = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")
_FIELD_WORDS = re.compile(r"^(?P<field>[a-z][a-z_]*) (?P<rest>(?:must|has|is|may) .*)$", re.DOTALL)


def field_label(key: str | None) -> str:
    """``"plan.price"`` → ``"Price"``, ``"assets[2]"`` → ``"Assets"``: the field in words."""
    if not key:
        return "The request"
    name = re.sub(r"\[\d+\]$", "", key).rsplit(".", 1)[-1]
    return FIELD_LABELS.get(name, name.replace("_", " ").capitalize())


def _join(parent: str | None, name: str) -> str:
    return f"{parent}.{name}" if parent else name


def _literal_choices(kind: Any, key: str | None) -> list[str]:
    """The values a Literal field at ``key`` of ``kind`` takes ([] when not found)."""
    info: Any = mi.type_info(kind) if kind is not None else None
    for part in (key or "").replace("[", ".[").split("."):
        if not part or info is None:
            continue
        while isinstance(info, mi.UnionType | mi.Metadata):
            info = (
                info.type
                if isinstance(info, mi.Metadata)
                else next(
                    (t for t in info.types if not isinstance(t, mi.NoneType)),
                    None,
                )
            )
        if part.startswith("["):
            info = getattr(info, "item_type", None)
        elif isinstance(info, mi.StructType):
            info = next((f.type for f in info.fields if f.encode_name == part), None)
        else:
            info = None
    while isinstance(info, mi.UnionType | mi.Metadata):
        info = info.type if isinstance(info, mi.Metadata) else info.types[0]
    return [str(v) for v in info.values] if isinstance(info, mi.LiteralType) else []


def plain_validation(raw: str, kind: Any = None) -> tuple[str, str | None]:
    """msgspec's account of a body that does not fit ``kind``, as ``(message, key)``: the
    field in words and what to do, and the field's dotted path (None: the body itself)."""
    found = _AT.match(raw)
    assert found is not None  # the pattern matches every string
    text = found["message"].strip()
    path = (found["path"] or "").lstrip(".") or None
    label = field_label(path)
    name = re.sub(r"\[\d+\]$", "", path or "").rsplit(".", 1)[-1]
    if m := re.fullmatch(r"Object missing required field `(\w+)`", text):
        key = _join(path, m[1])
        return f"{field_label(key)} is required", key
    if m := re.fullmatch(r"Object contains unknown field `(\w+)`", text):
        key = _join(path, m[1])
        return f"{m[1]!r} is not a field this request takes", key
    if m := _FIELD_WORDS.match(text):
        # A check after decoding names its field (check_amount, check_plain_text, ...).
        key = _join(path, m["field"])
        rest = _IDENTIFIER.sub(
            lambda n: FIELD_LABELS.get(n[0], n[0]).lower() if "_" in n[0] else n[0], m["rest"]
        )
        return f"{field_label(key)} {rest}", key
    if text.startswith("Expected `str` matching regex"):
        return _FORMATS.get(name, f"{label} is not in the expected form"), path
    if m := re.fullmatch(r"Expected `(\w+)` of length ([<>]=) (\d+)", text):
        what, relation, size = m[1], m[2], int(m[3])
        if name in ("email", "login") and what == "str":
            return "Enter a valid e-mail address", path
        unit = "characters" if what == "str" else "items"
        if relation == ">=":
            if size == 1:
                return f"{label} must not be empty", path
            return f"{label} must be at least {size} {unit}", path
        return f"{label} must be at most {size} {unit}", path
    if m := re.fullmatch(r"Expected `(?:int|float|number)` ([<>]=?) (-?[\d.]+)", text):
        words = {">=": "at least", ">": "more than", "<=": "at most", "<": "less than"}
        return f"{label} must be {words[m[1]]} {m[2]}", path
    if text.startswith(("Invalid enum value", "Invalid value")):
        choices = _literal_choices(kind, path)
        if choices:
            listed = (
                ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else choices[0]
            )
            return f"{label} must be {listed}", path
        return f"{label} is not one of the choices it takes", path
    if m := re.fullmatch(r"Expected `([\w| ]+)`, got `\w+`", text):
        wanted = [_TYPES.get(t.strip(), t.strip()) for t in m[1].split("|")]
        wanted = [w for w in wanted if w != "empty"] or ["empty"]
        if path is None:
            return f"The request body must be {' or '.join(wanted)}", None
        return f"{label} must be {' or '.join(wanted)}", path
    if text and text[0].islower():
        # A decode hook's predicate (parse_money): "must be a positive amount, e.g. 10.00".
        return f"{label} {text}", path
    return text, path


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
    message = str(exc.detail)
    if code is not None and isinstance(details, list) and details:
        # Query and path parameters: each problem in words, the first one as the message.
        details = [_plain_detail(d) for d in details]
        message = details[0]["message"]
    return Response(
        error_body(code or _CODES.get(status, "client_error"), message, details),
        status_code=status,
        headers=exc.headers,
        media_type=MediaType.JSON,
    )


def _plain_detail(detail: Any) -> Any:
    if not isinstance(detail, dict) or not isinstance(detail.get("message"), str):
        return detail
    key = detail.get("key")
    at = f" - at `$.{key}`" if isinstance(key, str) and key else ""
    message, _ = plain_validation(detail["message"] + at)
    return {**detail, "message": message}


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
