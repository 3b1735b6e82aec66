"""The admin HTTP API every broker simulator serves beside its broker protocol.

One shape for every kind, so tests, the demo and the benchmark drive any simulator alike:

- ``GET /health``
- ``POST /admin/accounts`` {currency, balance} → the new account's credentials (201)
- ``POST /admin/accounts/batch`` {count, currency, balance} → ``{"accounts": [...]}``
- ``GET /admin/accounts`` → ``{"accounts": [...]}`` with each balance
- ``POST /admin/accounts/{id}/revoke`` → revokes the account's credentials (its sessions
  close, the broker refuses them from now on) and answers the new ones; 404 if unknown
- ``GET /admin/ledger?since=N`` → ``{"contracts": [...], "total": T}``: every contract
  sold, in booking order, each with the request that bought it (the record against which
  "placed exactly once" is checked); ``since`` skips the first N
- ``GET``/``PUT /admin/faults`` → the :class:`Faults` switches; a PUT changes what it names
- ``PUT /admin/limits`` → replaces rate-limit categories
- ``GET /admin/stats`` → counters, with the open connections

A broker kind supplies the rows (:class:`SimulatedBroker`); their fields are its own. A
kind whose protocol has HTTP calls of its own (a login) or admin calls of its own also
implements :class:`OwnRoutes`: its routes are asked first, the shared ones answer the rest.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

import msgspec

from apps.brokers.simulation.faults import Faults
from apps.brokers.simulation.limits import RateLimits
from apps.brokers.simulation.peer import encoder

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class NewAccount(msgspec.Struct, kw_only=True):
    currency: str = "USD"
    balance: Decimal = Decimal("10000")


class NewAccounts(NewAccount, kw_only=True):
    count: int = 1


class SimulatedBroker(Protocol):
    """What a broker kind's simulator supplies to the admin API."""

    faults: Faults
    stats: dict[str, int]  # "messages", "drops" and the kind's own counters

    def open_account(self, currency: str, balance: Decimal) -> dict[str, Any]:
        """Open an account; its credentials and balance as ``POST /admin/accounts`` answers."""
        ...

    def open_accounts(self, count: int, currency: str, balance: Decimal) -> list[dict[str, Any]]:
        """Open ``count`` accounts; each one's credentials (the batch's rows)."""
        ...

    def account_rows(self) -> list[dict[str, Any]]: ...

    def ledger_rows(self, since: int) -> tuple[list[dict[str, Any]], int]:
        """The contracts booked after the first ``since``, and how many there are in all."""
        ...

    def set_rate_limits(self, limits: RateLimits) -> RateLimits:
        """Replace the named categories; every category now in force."""
        ...

    def connection_count(self) -> int: ...

    def revoke(self, account_id: str) -> dict[str, Any] | None:
        """Revoke the account's credentials; the new ones, or ``None`` if no such account."""
        ...


class HttpRequest(msgspec.Struct, frozen=True, kw_only=True):
    method: str
    path: str  # without a trailing slash
    body: bytes
    query: dict[str, list[str]]
    content_type: str


class HttpReply(msgspec.Struct, frozen=True, kw_only=True):
    status: int
    body: Any  # encoded as JSON
    headers: tuple[tuple[str, str], ...] = ()


@runtime_checkable
class OwnRoutes(Protocol):
    """A broker kind's own HTTP routes, asked before the shared admin API."""

    def own_route(self, request: HttpRequest) -> HttpReply | None:
        """The reply to ``request``, or None when it is not one of the kind's routes."""
        ...


def route(
    broker: SimulatedBroker,
    method: str,
    path: str,
    body: bytes,
    query: dict[str, list[str]] | None = None,
) -> tuple[int, Any]:
    """The status and JSON body of one admin request."""
    if (method, path) == ("GET", "/health"):
        return 200, {"status": "ok"}
    if (method, path) == ("POST", "/admin/accounts"):
        new = msgspec.json.decode(body or b"{}", type=NewAccount, strict=False)
        return 201, broker.open_account(new.currency, new.balance)
    if (method, path) == ("POST", "/admin/accounts/batch"):
        # Benchmarks need thousands of accounts; one request instead of one each.
        batch = msgspec.json.decode(body or b"{}", type=NewAccounts, strict=False)
        if not 1 <= batch.count <= 1_000_000:
            return 400, {"error": "count must be 1..1000000"}
        return 201, {"accounts": broker.open_accounts(batch.count, batch.currency, batch.balance)}
    if (method, path) == ("GET", "/admin/accounts"):
        return 200, {"accounts": broker.account_rows()}
    if method == "POST" and path.startswith("/admin/accounts/") and path.endswith("/revoke"):
        account_id = path.removeprefix("/admin/accounts/").removesuffix("/revoke")
        revoked = broker.revoke(account_id)
        if revoked is None:
            return 404, {"error": f"no account {account_id}"}
        return 200, revoked
    if (method, path) == ("GET", "/admin/ledger"):
        # ?since=N: only contracts booked after the first N (benchmarks poll per run).
        since = int((query or {}).get("since", ["0"])[0])
        rows, total = broker.ledger_rows(since)
        return 200, {"contracts": rows, "total": total}
    if (method, path) == ("GET", "/admin/faults"):
        return 200, broker.faults
    if (method, path) == ("PUT", "/admin/faults"):
        changes = msgspec.json.decode(body or b"{}")
        broker.faults = broker.faults.updated(dict(changes))
        return 200, broker.faults
    if (method, path) == ("PUT", "/admin/limits"):
        limits = msgspec.json.decode(body, type=RateLimits)
        return 200, broker.set_rate_limits(limits)
    if (method, path) == ("GET", "/admin/stats"):
        return 200, broker.stats | {"connections": broker.connection_count()}
    return 404, {"error": f"no route {method} {path}"}


async def serve_http(broker: SimulatedBroker, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer one ASGI HTTP request with :func:`route`."""
    body = b""
    while True:
        event = await receive()
        body += event.get("body", b"")
        if not event.get("more_body"):
            break
    method, path = scope["method"], scope["path"].rstrip("/")
    query = urllib.parse.parse_qs(scope.get("query_string", b"").decode())
    extra: tuple[tuple[str, str], ...] = ()
    try:
        own = None
        if isinstance(broker, OwnRoutes):
            headers = dict(scope.get("headers") or [])
            content_type = headers.get(b"content-type", b"").decode("latin-1")
            own = broker.own_route(
                HttpRequest(
                    method=method, path=path, body=body, query=query, content_type=content_type
                )
            )
        if own is not None:
            status, payload, extra = own.status, own.body, own.headers
        else:
            status, payload = route(broker, method, path, body, query)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        status, payload = 400, {"error": str(exc)}
    data = encoder.encode(payload)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *((name.encode("latin-1"), value.encode("latin-1")) for name, value in extra),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
